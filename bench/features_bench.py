"""Feature-extraction throughput: slide read → transform → model (pathnb.wsi.features.extract_features)
versus the same model on pre-loaded, pre-normalised tensors (same model, batch size, dtype, device).

    python bench/features_bench.py                      # vit_tiny, 96 tiles, 1 torch thread, CPU, workers 0 and 1
    python bench/features_bench.py --model vit_small_patch16_224 --tiles 128
    python bench/features_bench.py --rss                # peak RSS for 500 vs 5000 tiles (memory is bounded)

    python bench/features_bench.py --variants --json bench/results/features_cpu.json   # what helps the model on a CPU

Goal: pipeline / model-alone ≥ 0.9. Prints one line per setting and the ratio.

`--variants` times a ViT-S/16-sized model (timm vit_small_patch16_224, random weights, built locally) on the same
uint8 tiles, from tiles to float32 features, in paired, interleaved rounds (order rotated each round): plain eager
timm (torch.no_grad, fp32, --threads torch threads, default 1) against torch.inference_mode, channels_last,
bfloat16 autocast, torch.compile and the other thread setting (all cores, or 1), alone and combined. Per-round
speed-ups (baseline / variant, in wall seconds and in CPU seconds of the process) are reported as median [IQR], with
each variant's smallest per-tile cosine similarity to the fp32 features; then extract_features with the kept options
against its exact default, on the same slide tiles. On a shared machine the CPU-time ratio is the steadier one.
"""
from __future__ import annotations
import argparse, contextlib, os, resource, statistics, subprocess, sys, time
from pathlib import Path
import numpy as np
import torch
from pathnb.core import cache_dir, seed_everything
from pathnb.wsi.synth import write_synth_slide
from pathnb.wsi.slide import open_slide
from pathnb.wsi.tiling import Tiles, tile_slide
from pathnb.wsi.encoders import load_encoder
from pathnb.wsi.features import TileBatches, extract_features


def synth_slide(size:int=3072)->Path:
    "A cached synthetic pyramidal JPEG TIFF at 0.5 µm/px."
    p = cache_dir("bench")/f"synth_{size}.tiff"
    if not p.exists():
        write_synth_slide(p, size, size, mpp=0.5, seed=1)
    return p


def cycle_tiles(t:Tiles, n:int)->Tiles:
    "A table of `n` tiles cycling through `t` (same reads, any count)."
    return Tiles(t.df.iloc[np.arange(n) % len(t)].reset_index(drop=True), t.spec)


def _clock():
    "(wall, CPU seconds of this process and its reaped children)."
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + c.ru_utime + c.ru_stime


def model_alone(enc, pre:torch.Tensor, bs:int)->tuple[float, float]:
    "(wall, CPU) seconds to run the model over pre-normalised float tensors, batch by batch."
    w0, c0 = _clock()
    with torch.inference_mode():
        for i in range(0, len(pre), bs):
            enc(pre[i:i + bs]).float().cpu().numpy()
    w1, c1 = _clock()
    return w1 - w0, c1 - c0


def pipeline(path, t, enc, bs:int, workers:int)->tuple[float, float]:
    "(wall, CPU) seconds of extract_features: read → transform → model."
    w0, c0 = _clock()
    extract_features(path, t, enc, batch_size=bs, num_workers=workers, device="cpu", amp=False)
    w1, c1 = _clock()
    return w1 - w0, c1 - c0


def read_only(path, tiles, bs:int)->float:
    "Seconds to read and stack the tiles (no model)."
    ds = TileBatches(path, tiles, bs)
    t0 = time.perf_counter()
    for j in range(len(ds)):
        ds[j]
    ds.close()
    return time.perf_counter() - t0


def throughput(args):
    seed_everything(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = synth_slide(args.size)
    s = open_slide(path)
    t = cycle_tiles(tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.25), args.tiles)
    enc = load_encoder(args.model, pretrained=False)
    pre = torch.from_numpy(np.stack([t.read(s, i) for i in range(len(t))]))
    with torch.inference_mode():
        pre = enc.preprocess(pre).contiguous()   # float32, normalised, (n, 3, 224, 224)
    model_alone(enc, pre[:args.batch], args.batch)           # warm-up
    res = {"model": [], **{f"w{w}": [] for w in args.workers}}
    for r in range(args.repeats):   # interleaved, so that load from other processes hits every setting alike
        res["model"].append(model_alone(enc, pre, args.batch))
        for w in args.workers:
            res[f"w{w}"].append(pipeline(path, t, enc, args.batch, w))
    rd = read_only(path, t, args.batch)
    n = len(t)
    med = lambda k, i: statistics.median(v[i] for v in res[k])
    print(f"model={args.model} tiles={n} (224 px @ 0.5 µm/px from a JPEG TIFF {args.size}²) batch={args.batch} "
          f"dtype=float32 device=cpu torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"load_avg={os.getloadavg()[0]:.1f} repeats={args.repeats} (medians)")
    print(f"  read+stack only (1 process):  {n / rd:8.1f} tiles/s")
    mw, mc = med("model", 0), med("model", 1)
    runs = [round(n / v[0], 1) for v in res["model"]]
    print(f"  model alone (pre-loaded):     {n / mw:8.1f} tiles/s   wall runs {runs}")
    for w in args.workers:
        pw, pc = med(f"w{w}", 0), med(f"w{w}", 1)
        ratios = [round(m[0] / p[0], 3) for m, p in zip(res["model"], res[f"w{w}"])]
        runs = [round(n / v[0], 1) for v in res[f"w{w}"]]
        print(f"  pipeline, num_workers={w}:     {n / pw:8.1f} tiles/s   wall runs {runs}")
        print(f"      RATIO pipeline/model (wall, median) = {mw / pw:.3f}   per repeat {ratios}   "
              f"CPU-time ratio = {mc / pc:.3f}")
    if args.json:
        import json
        pipe = {f"num_workers={w}": dict(tiles_per_s=round(n / med(f"w{w}", 0), 1),
                                         ratio_vs_model=round(mw / med(f"w{w}", 0), 3)) for w in args.workers}
        out = dict(command="python bench/features_bench.py " + " ".join(sys.argv[1:]), model=args.model, tiles=n,
                   batch=args.batch, torch_threads=torch.get_num_threads(), cpus=os.cpu_count(),
                   load_avg=round(os.getloadavg()[0], 1), read_only_tiles_per_s=round(n / rd, 1),
                   model_alone_tiles_per_s=round(n / mw, 1), pipeline=pipe)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


def _cos_min(a:np.ndarray, b:np.ndarray)->float:
    "Smallest per-row cosine similarity between two feature matrices."
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def _runner(enc, bs:int, grad:str="inference", channels_last:bool=False, bf16:bool=False, compiled=None,
            threads:int|None=None):
    "A function uint8 tiles (n, h, w, 3) → float32 features (n, dim), batch by batch, with the given settings."
    model = compiled if compiled is not None else enc
    def run(tiles:torch.Tensor)->np.ndarray:
        old = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        ctx = torch.inference_mode() if grad == "inference" else torch.no_grad()
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        out = []
        try:
            with ctx, amp:
                for i in range(0, len(tiles), bs):
                    x = enc.preprocess(tiles[i:i + bs])
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    out.append(model(x).float().numpy())
        finally:
            torch.set_num_threads(old)
        return np.concatenate(out)
    return run


def variants(args):
    "Model-level speed-ups on a CPU against plain eager timm, and extract_features with the kept options."
    import copy, json, platform
    seed_everything(0)
    path = synth_slide(args.size)
    s = open_slide(path)
    t = cycle_tiles(tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.25), args.tiles)
    tiles = torch.from_numpy(np.stack([t.read(s, i) for i in range(len(t))]))   # uint8, the same for every variant
    enc = load_encoder(args.model, pretrained=False)
    enc_cl = copy.deepcopy(enc).to(memory_format=torch.channels_last)
    ncpu = os.cpu_count() or 1
    bs = args.batch
    torch.set_num_threads(args.threads or ncpu)   # every variant but the thread one runs with these threads
    runs = {"eager (baseline)": _runner(enc, bs, grad="no_grad"),
            "inference_mode": _runner(enc, bs),
            "channels_last": _runner(enc_cl, bs, channels_last=True),
            "bf16 autocast": _runner(enc, bs, bf16=True),
            "bf16 + channels_last": _runner(enc_cl, bs, channels_last=True, bf16=True)}
    other = 1 if torch.get_num_threads() > 1 else ncpu
    if other != torch.get_num_threads():
        runs[f"{other} thread{'s' if other > 1 else ''}"] = _runner(enc, bs, grad="no_grad", threads=other)
    compile_s = {}
    if not args.no_compile:
        for name, bf in (("torch.compile", False), ("torch.compile + bf16", True)):
            c = torch.compile(copy.deepcopy(enc), dynamic=False)
            r = _runner(enc, bs, bf16=bf, compiled=c)
            t0 = time.perf_counter()
            r(tiles[:bs])   # compiles (one batch shape)
            compile_s[name] = round(time.perf_counter() - t0, 1)
            runs[name] = r
    ref = runs["eager (baseline)"](tiles)
    cos = {k: round(_cos_min(f(tiles), ref), 5) for k, f in runs.items()}   # also the warm-up
    times, cpu = {k: [] for k in runs}, {k: [] for k in runs}
    load0 = os.getloadavg()
    keys = list(runs)
    for r in range(args.repeats):   # interleaved, order rotated each round: load from other processes hits all alike
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            w0, c0 = _clock()
            runs[k](tiles)
            w1, c1 = _clock()
            times[k].append(w1 - w0)
            cpu[k].append(c1 - c0)
    base, cbase = np.array(times["eager (baseline)"]), np.array(cpu["eager (baseline)"])
    n = len(tiles)
    q = lambda a: [round(float(np.median(a)), 3), round(float(np.percentile(a, 25)), 3),
                   round(float(np.percentile(a, 75)), 3)]
    rows = []
    for k, v in times.items():
        sp, csp = base / np.array(v), cbase / np.array(cpu[k])
        rows.append(dict(variant=k, tiles_per_s=round(n / float(np.median(v)), 2), speedup=q(sp), cpu_speedup=q(csp),
                         min_cosine_to_fp32=cos[k], kept=bool(cos[k] >= 0.999 and np.median(sp) > 1.02)))
    # the pipeline: extract_features(default, exact) against extract_features(kept options), paired rounds
    pipe = {"extract_features default (fp32)": {}, "extract_features amp='bf16'": dict(amp="bf16"),
            "extract_features amp='bf16', channels_last": dict(amp="bf16", channels_last=True)}
    fref = extract_features(s, t, enc, batch_size=bs, num_workers=0, device="cpu")
    pcos, ptimes, pcpu = {}, {k: [] for k in pipe}, {k: [] for k in pipe}
    for k, kw in pipe.items():
        f = extract_features(s, t, enc, batch_size=bs, num_workers=0, device="cpu", **kw)
        pcos[k] = round(_cos_min(f, fref), 5)
    pk = list(pipe)
    for r in range(args.repeats):
        for k in pk[r % len(pk):] + pk[:r % len(pk)]:
            w0, c0 = _clock()
            extract_features(s, t, enc, batch_size=bs, num_workers=0, device="cpu", **pipe[k])
            w1, c1 = _clock()
            ptimes[k].append(w1 - w0)
            pcpu[k].append(c1 - c0)
    pbase = np.array(ptimes["extract_features default (fp32)"])
    pcbase = np.array(pcpu["extract_features default (fp32)"])
    for k, v in ptimes.items():
        rows.append(dict(variant=k, tiles_per_s=round(n / float(np.median(v)), 2), speedup=q(pbase / np.array(v)),
                         cpu_speedup=q(pcbase / np.array(pcpu[k])), min_cosine_to_fp32=pcos[k]))
    out = dict(command="python bench/features_bench.py " + " ".join(sys.argv[1:]), model=args.model, tiles=n,
               batch=bs, cpus=ncpu, cpu=platform.processor() or platform.machine(),
               avx512_bf16=bool(torch.cpu._is_avx512_bf16_supported()), torch=torch.__version__,
               torch_threads=torch.get_num_threads(), load_avg_start=[round(x, 1) for x in load0],
               load_avg_end=[round(x, 1) for x in os.getloadavg()], repeats=args.repeats, compile_seconds=compile_s,
               variants=rows)
    print(f"model={args.model} tiles={n} batch={bs} cpus={ncpu} avx512_bf16={out['avx512_bf16']} "
          f"load {load0[0]:.1f} → {os.getloadavg()[0]:.1f}; compile seconds {compile_s}")
    print(f"  {'variant':46s} {'tiles/s':>8s}  wall speed-up [IQR]    CPU-time speed-up [IQR]  min cos to fp32")
    for row in rows:
        sp, cs = row["speedup"], row["cpu_speedup"]
        print(f"  {row['variant']:46s} {row['tiles_per_s']:8.2f}  {sp[0]:.3f} [{sp[1]:.3f}, {sp[2]:.3f}]   "
              f"{cs[0]:.3f} [{cs[1]:.3f}, {cs[2]:.3f}]   {row['min_cosine_to_fp32']:.5f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


def rss_child(n:int, size:int):
    path = synth_slide(size)
    with open_slide(path) as s:
        t = cycle_tiles(tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.25), n)
    enc = load_encoder("test-vit", pretrained=False)   # resizes the 224-px tiles to its 32-px input
    extract_features(path, t, enc, batch_size=32, num_workers=0, device="cpu")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)   # KiB on Linux


def rss(args):
    synth_slide(args.size)
    out = {}
    for n in (500, 5000):
        r = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--size", str(args.size)],
                           capture_output=True, text=True, check=True)
        out[n] = int(r.stdout.split()[-1]) / 1024
        print(f"  {n:5d} tiles: peak RSS {out[n]:.0f} MiB")
    print(f"  growth 500 → 5000 tiles: {out[5000] - out[500]:+.0f} MiB "
          f"(the 4500 extra 224-px tiles are {4500 * 224 * 224 * 3 / 2**20:.0f} MiB of pixels)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_tiny_patch16_224")
    ap.add_argument("--tiles", type=int, default=96)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the model (0: torch's default); readers run in their own processes")
    ap.add_argument("--size", type=int, default=3072, help="edge of the synthetic slide in level-0 pixels")
    ap.add_argument("--rss", action="store_true")
    ap.add_argument("--variants", action="store_true", help="CPU speed-ups of the model itself (see above)")
    ap.add_argument("--no-compile", action="store_true", help="--variants without torch.compile")
    ap.add_argument("--json", default=None, help="also write the throughput results to this JSON file")
    ap.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rss_child:
        rss_child(a.rss_child, a.size)
    elif a.rss:
        rss(a)
    elif a.variants:
        variants(a)
    else:
        throughput(a)
