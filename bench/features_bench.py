"""Feature-extraction throughput: slide read → transform → model (pathnb.wsi.features.extract_features)
versus the same model on pre-loaded, pre-normalised tensors (same model, batch size, dtype, device).

    python bench/features_bench.py                      # vit_tiny, 96 tiles, 1 torch thread, CPU, workers 0 and 1
    python bench/features_bench.py --model vit_small_patch16_224 --tiles 128
    python bench/features_bench.py --rss                # peak RSS for 500 vs 5000 tiles (memory is bounded)

Goal: pipeline / model-alone ≥ 0.9. Prints one line per setting and the ratio.
"""
from __future__ import annotations
import argparse, os, resource, statistics, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
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
    if not p.exists(): write_synth_slide(p, size, size, mpp=0.5, seed=1)
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
        for i in range(0, len(pre), bs): enc(pre[i:i + bs]).float().cpu().numpy()
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
    for j in range(len(ds)): ds[j]
    ds.close()
    return time.perf_counter() - t0


def throughput(args):
    seed_everything(0)
    if args.threads: torch.set_num_threads(args.threads)
    path = synth_slide(args.size)
    s = open_slide(path)
    t = cycle_tiles(tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.25), args.tiles)
    enc = load_encoder(args.model, pretrained=False)
    pre = torch.from_numpy(np.stack([t.read(s, i) for i in range(len(t))]))
    with torch.inference_mode(): pre = enc.preprocess(pre).contiguous()   # float32, normalised, (n, 3, 224, 224)
    model_alone(enc, pre[:args.batch], args.batch)           # warm-up
    res = {"model": [], **{f"w{w}": [] for w in args.workers}}
    for r in range(args.repeats):   # interleaved, so that load from other processes hits every setting alike
        res["model"].append(model_alone(enc, pre, args.batch))
        for w in args.workers: res[f"w{w}"].append(pipeline(path, t, enc, args.batch, w))
    rd = read_only(path, t, args.batch)
    n = len(t)
    med = lambda k, i: statistics.median(v[i] for v in res[k])
    print(f"model={args.model} tiles={n} (224 px @ 0.5 µm/px from a JPEG TIFF {args.size}²) batch={args.batch} dtype=float32 "
          f"device=cpu torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} load_avg={os.getloadavg()[0]:.1f} repeats={args.repeats} (medians)")
    print(f"  read+stack only (1 process):  {n / rd:8.1f} tiles/s")
    mw, mc = med("model", 0), med("model", 1)
    print(f"  model alone (pre-loaded):     {n / mw:8.1f} tiles/s   wall runs {[round(n / v[0], 1) for v in res['model']]}")
    for w in args.workers:
        pw, pc = med(f"w{w}", 0), med(f"w{w}", 1)
        ratios = [round(m[0] / p[0], 3) for m, p in zip(res["model"], res[f"w{w}"])]
        print(f"  pipeline, num_workers={w}:     {n / pw:8.1f} tiles/s   wall runs {[round(n / v[0], 1) for v in res[f'w{w}']]}")
        print(f"      RATIO pipeline/model (wall, median) = {mw / pw:.3f}   per repeat {ratios}   CPU-time ratio = {mc / pc:.3f}")
    if args.json:
        import json
        out = dict(command="python bench/features_bench.py " + " ".join(sys.argv[1:]), model=args.model, tiles=n, batch=args.batch,
                   torch_threads=torch.get_num_threads(), cpus=os.cpu_count(), load_avg=round(os.getloadavg()[0], 1),
                   read_only_tiles_per_s=round(n / rd, 1), model_alone_tiles_per_s=round(n / mw, 1),
                   pipeline={f"num_workers={w}": dict(tiles_per_s=round(n / med(f"w{w}", 0), 1), ratio_vs_model=round(mw / med(f"w{w}", 0), 3))
                             for w in args.workers})
        Path(args.json).parent.mkdir(parents=True, exist_ok=True); Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


def rss_child(n:int, size:int):
    path = synth_slide(size)
    with open_slide(path) as s: t = cycle_tiles(tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.25), n)
    enc = load_encoder("test-vit", pretrained=False)   # resizes the 224-px tiles to its 32-px input
    extract_features(path, t, enc, batch_size=32, num_workers=0, device="cpu")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)   # KiB on Linux


def rss(args):
    synth_slide(args.size)
    out = {}
    for n in (500, 5000):
        r = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--size", str(args.size)], capture_output=True, text=True, check=True)
        out[n] = int(r.stdout.split()[-1]) / 1024
        print(f"  {n:5d} tiles: peak RSS {out[n]:.0f} MiB")
    print(f"  growth 500 → 5000 tiles: {out[5000] - out[500]:+.0f} MiB (the 4500 extra 224-px tiles are {4500 * 224 * 224 * 3 / 2**20:.0f} MiB of pixels)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_tiny_patch16_224")
    ap.add_argument("--tiles", type=int, default=96)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the model (0: torch's default); readers run in their own processes")
    ap.add_argument("--size", type=int, default=3072, help="edge of the synthetic slide in level-0 pixels")
    ap.add_argument("--rss", action="store_true")
    ap.add_argument("--json", default=None, help="also write the throughput results to this JSON file")
    ap.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rss_child: rss_child(a.rss_child, a.size)
    elif a.rss: rss(a)
    else: throughput(a)
