"""WSI pipeline benchmarks (issue #3): tiling throughput vs peers and the decode limit, and peak memory.

    python bench/wsi_bench.py tiling [--size 12000]     # pathnb vs naive OpenSlide loop vs histolab, and the decode limit
    python bench/wsi_bench.py memory [--sizes 20000 40000] [--encoder vit_tiny]   # peak RSS, tiling + embedding
    python bench/wsi_bench.py render                    # synthetic renderer: exact fields vs texture mode, µs per pixel

All numbers of one invocation come from the same run on the same slide (ratios, because these
machines are noisy). Slides are synthetic (pathnb.wsi.synth), written once into bench/_cache/.
"""
import argparse, json, os, subprocess, sys, time, resource
from pathlib import Path
import numpy as np

CACHE = Path(__file__).resolve().parent/"_cache"

def synth_slide(size, mpp, square=False):
    from pathnb.wsi.synth import write_synth_slide
    p = CACHE/f"synth_{size}{'sq' if square else ''}_{mpp}.tiff"
    if not p.exists():
        CACHE.mkdir(exist_ok=True)
        t = time.time(); write_synth_slide(p, size, size if square else int(size * 0.75), mpp=mpp, seed=0, fast=True, n_fragments=4)
        print(f"wrote {p.name} ({p.stat().st_size/1e6:.0f} MB) in {time.time()-t:.0f}s", flush=True)
    return p

def tissue_frac_rgb(tile):
    "Saturation-threshold tissue fraction of one RGB tile (what a naive loop computes per tile)."
    t = tile.astype(np.int16); s = t.max(-1) - t.min(-1)
    return float((s > 20).mean())

def bench_tiling(size, tile_px=224, min_tissue=0.5, repeats=5):
    """Median seconds over `repeats` interleaved rounds (each round: every method once, fresh slide
    handles inside the timed block), so that load from other processes hits every method alike."""
    import openslide, statistics, tempfile
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    path = synth_slide(size, 0.5)   # tiles at the native 0.5 µm/px: the same level-0 grid for every tool
    with open_slide(path) as s: tiles = tile_slide(s, tile_mpp=0.5, tile_px=tile_px, min_tissue=min_tissue)
    xy, n = tiles.xy, len(tiles)

    def pathnb(nw):
        t = time.perf_counter()
        with open_slide(path) as s:
            tm = detect_tissue(s); tl = tile_slide(s, tile_mpp=0.5, tile_px=tile_px, min_tissue=min_tissue, tissue=tm)
            tg = time.perf_counter() - t
            for i, im in iter_tiles(s, tl, num_workers=nw): pass
        assert len(tl) == n
        return time.perf_counter() - t, tg
    def decode():   # OpenSlide read_region of exactly the kept tiles, nothing else
        t = time.perf_counter(); o = openslide.OpenSlide(str(path))
        for x, y in xy: o.read_region((int(x), int(y)), 0, (tile_px, tile_px))
        o.close(); return time.perf_counter() - t
    def histolab_same():   # the same kept tiles, read through histolab (no tissue step)
        from histolab.slide import Slide as HSlide
        from histolab.types import CoordinatePair
        t = time.perf_counter(); hs = HSlide(str(path), processed_path=tempfile.mkdtemp())
        for x, y in xy: np.asarray(hs.extract_tile(CoordinatePair(int(x), int(y), int(x) + tile_px, int(y) + tile_px), level=0).image.convert("RGB"))
        return time.perf_counter() - t
    runs = {k: [] for k in ("pathnb", "pathnb_tissue_grid", "pathnb_2threads", "decode_limit", "histolab_same_tiles")}
    res = {"repeats": repeats, "n_tiles": n}
    for r in range(repeats):
        tt, tg = pathnb(1); runs["pathnb"].append(tt); runs["pathnb_tissue_grid"].append(tg)
        runs["pathnb_2threads"].append(pathnb(2)[0])
        runs["decode_limit"].append(decode())
        try: runs["histolab_same_tiles"].append(histolab_same())
        except Exception as e: res["histolab_error"] = f"{type(e).__name__}: {e}"
    for k, v in runs.items():
        if v: res[f"{k}_s"] = statistics.median(v)
    res["pathnb_read_s"] = statistics.median(a - b for a, b in zip(runs["pathnb"], runs["pathnb_tissue_grid"]))
    # --- naive loop (once: it is slow): read every grid tile at level 0, threshold it, keep tissue tiles
    osl = openslide.OpenSlide(str(path)); W, H = osl.dimensions
    t = time.perf_counter(); kept = 0
    for y in range(0, H - tile_px + 1, tile_px):
        for x in range(0, W - tile_px + 1, tile_px):
            tile = np.asarray(osl.read_region((x, y), 0, (tile_px, tile_px)).convert("RGB"))
            kept += tissue_frac_rgb(tile) >= min_tissue
    res["naive_s"] = time.perf_counter() - t; res["naive_kept"] = int(kept); osl.close()
    # --- histolab GridTiler with its own tissue check (once)
    try:
        from histolab.slide import Slide as HSlide
        from histolab.tiler import GridTiler
        hs = HSlide(str(path), processed_path=tempfile.mkdtemp())
        tiler = GridTiler(tile_size=(tile_px, tile_px), level=0, check_tissue=True)
        t = time.perf_counter(); hk = sum(1 for _ in tiler._tiles_generator(hs))
        res["histolab_s"] = time.perf_counter() - t; res["histolab_kept"] = hk
    except Exception as e:
        res["histolab_error"] = f"{type(e).__name__}: {e}"
    res["tiles_per_s"] = {k[:-2]: round(n / res[k], 1) for k in ("pathnb_s", "pathnb_2threads_s", "decode_limit_s", "naive_s", "histolab_s", "histolab_same_tiles_s") if k in res}
    res["pathnb_vs_decode_limit"] = round(res["decode_limit_s"] / res["pathnb_s"], 3)
    res["pathnb_read_only_vs_decode_limit"] = round(res["decode_limit_s"] / res["pathnb_read_s"], 3)
    res["pathnb_2threads_vs_decode_limit"] = round(res["decode_limit_s"] / res["pathnb_2threads_s"], 3)
    if "histolab_same_tiles_s" in res:
        res["pathnb_speedup_vs_histolab_same_tiles"] = round(res["histolab_same_tiles_s"] / res["pathnb_s"], 2)
        res["pathnb_read_only_speedup_vs_histolab_same_tiles"] = round(res["histolab_same_tiles_s"] / res["pathnb_read_s"], 2)
    res["pathnb_speedup_vs_naive"] = round(res["naive_s"] / res["pathnb_s"], 2)
    if "histolab_s" in res: res["pathnb_speedup_vs_histolab"] = round(res["histolab_s"] / res["pathnb_s"], 2)
    return res

def bench_render(region=1024, repeats=3):
    "Seconds to render a region of a synthetic slide at 0.5 µm/px, exact fields vs the cached-texture mode (best of `repeats`)."
    from pathnb.wsi.synth import SynthTissue
    st = SynthTissue(20000, 20000, mpp=0.5, seed=1)
    for fast in (False, True): st.render(0, 0, 64, 64, mpp=0.5, fast=fast)          # warm-up (the texture mode builds its cache)
    out = {}
    for fast in (False, True):
        ts = []
        for k in range(repeats):
            t = time.perf_counter(); st.render(3000 + region * k, 4000, region, region, mpp=0.5, fast=fast); ts.append(time.perf_counter() - t)
        out["fast_s" if fast else "exact_s"] = min(ts)
    return dict(region_px=region, **out, exact_us_per_px=out["exact_s"] / region**2 * 1e6, fast_us_per_px=out["fast_s"] / region**2 * 1e6,
                speedup=out["exact_s"] / out["fast_s"])

def _vmhwm_mb():
    "Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited from the parent)."
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"): return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def _memory_child(size, encoder, batch_size):
    "Runs in a fresh process: tile (+ embed) one slide, report peak RSS."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide
    path = synth_slide(size, 0.5, square=True)
    rss0 = _vmhwm_mb()
    t = time.time()
    with open_slide(path) as s:
        tm = detect_tissue(s); tiles = tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.5, tissue=tm)
        n = len(tiles)
        if encoder:
            from pathnb.wsi.encoders import load_encoder
            from pathnb.wsi.features import extract_features
            enc = load_encoder(encoder, pretrained=False)
            f = extract_features(s, tiles, enc, batch_size=batch_size, num_workers=0, device="cpu")
            assert f.shape[0] == n
        else:
            from pathnb.wsi.tiling import iter_tiles
            for i, im in iter_tiles(s, tiles): pass
    peak = _vmhwm_mb()
    print(json.dumps(dict(size=size, n_tiles=n, peak_rss_mb=round(peak), rss_after_imports_mb=round(rss0), seconds=round(time.time()-t, 1))))

def bench_memory(sizes, encoder, batch_size):
    out = []
    for size in sizes:
        synth_slide(size, 0.5, square=True)
        r = subprocess.run([sys.executable, __file__, "_memchild", str(size), encoder or "", str(batch_size)], capture_output=True, text=True)
        if r.returncode: print(r.stderr[-3000:]); raise SystemExit(1)
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(out[-1], flush=True)
    return out

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_memchild":
        _memory_child(int(sys.argv[2]), sys.argv[3] or None, int(sys.argv[4])); sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tiling", "memory", "render"])
    ap.add_argument("--size", type=int, default=12000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 40000])
    ap.add_argument("--encoder", default="")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file (e.g. bench/results/wsi_tiling.json)")
    a = ap.parse_args()
    os.environ.setdefault("PATHNB_PROGRESS", "0")
    if a.what == "tiling": res = dict(command=" ".join(["python bench/wsi_bench.py"] + sys.argv[1:]), size=a.size, **bench_tiling(a.size))
    elif a.what == "render": res = dict(command=" ".join(["python bench/wsi_bench.py"] + sys.argv[1:]), **bench_render())
    else: res = dict(command=" ".join(["python bench/wsi_bench.py"] + sys.argv[1:]), encoder=a.encoder or None, runs=bench_memory(a.sizes, a.encoder, a.batch_size))
    print(json.dumps(res, indent=1))
    if a.json:
        import platform
        res["machine"] = f"{os.cpu_count()} CPUs, {platform.machine()}, torch threads {__import__('torch').get_num_threads()}"
        Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
