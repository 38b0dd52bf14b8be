"""Crop-streaming throughput (cells/s) and peak memory on a synthetic pyramidal slide with >= 100,000 cells.

Usage: OMP_NUM_THREADS=1 python bench/nuclass_crops.py [--size 7800] [--cache /tmp/pathnb_bench]
Writes the slide once (cached), then streams crops in a fresh process and reports its peak RSS.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=7800)
p.add_argument("--cache", default="/tmp/pathnb_bench")
p.add_argument("--child", default="")
p.add_argument("--limit", type=int, default=0)
p.add_argument("--spec", default="small")
a = p.parse_args()
cache = Path(a.cache)
cache.mkdir(parents=True, exist_ok=True)
slide, cells = cache/f"synth_cells_{a.size}.tiff", cache/f"synth_cells_{a.size}_xy.npy"

if not a.child:
    from pathnb.wsi.cells import SynthCells
    if not slide.exists():
        t = time.time()
        st = SynthCells(a.size, a.size, seed=1)
        np.save(cells, st.xy_px)
        st.write_slide(slide, strip=512)
        print(f"wrote {slide} ({st.n_cells} cells, {slide.stat().st_size / 1e6:.0f} MB) in {time.time() - t:.0f} s")
    res = {}
    for spec, limit in (("small", 0), ("paper", 3000)):
        out = subprocess.run([sys.executable, __file__, "--size", str(a.size), "--cache", str(cache), "--child", "1",
                              "--spec", spec, "--limit", str(limit)], capture_output=True, text=True)
        print(out.stdout.strip())
        print(out.stderr.strip()[-2000:]) if out.returncode else None
else:
    import resource, psutil
    from pathnb.wsi.cells import CropSpec, iter_cell_crops, open_cell_slide
    xy = np.load(cells)
    if a.limit:
        xy = xy[:a.limit]
    spec = CropSpec(local_px=64, context_px=256, crop_mpp=0.5,
                    context_out_px=64) if a.spec == "small" else CropSpec(224, 1024, 0.25, 224)
    rss0 = psutil.Process().memory_info().rss
    with open_cell_slide(slide) as s:
        t = time.time()
        n = 0
        chk = 0
        peak_rss = rss0
        for idx, loc, ctx in iter_cell_crops(s, xy, spec, batch_size=256):
            n += len(idx)
            chk += int(loc[:, loc.shape[1] // 2, loc.shape[2] // 2].sum())
            peak_rss = max(peak_rss, psutil.Process().memory_info().rss)
        dt = time.time() - t
    # sampled after every batch (ru_maxrss would include the parent's memory inherited across exec)
    peak = peak_rss / 2**20
    print(json.dumps(dict(spec=a.spec,
                          crop=f"local {spec.local_px}px + context {spec.context_px}->{spec.context_out_px}px"
                               f" at {spec.crop_mpp} um/px",
                          cells=n, seconds=round(dt, 1), cells_per_s=round(n / dt, 1),
                          rss_before_mb=round(rss0 / 2**20), peak_rss_mb=round(peak), batch_size=256,
                          slide_px=list(s.dimensions) if hasattr(s, "dimensions") else None)))
