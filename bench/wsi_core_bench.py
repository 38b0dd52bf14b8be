"""Evidence for pathnb.wsi.tissue and pathnb.wsi.tiling (helper wsi-core).
Usage: OMP_NUM_THREADS=1 .venv/bin/python bench/wsi_core_bench.py
1. tissue Dice/IoU, pen kept, faint found, lumens kept open on 10 synthetic sections (8 µm/px thumbnails);
2. tiling speed on CMU-1-Small-Region.svs (tile_slide incl. tissue detection; tile reads/s);
3. tiling speed of the grid + integral-image tissue fraction alone on a large virtual slide."""
import time, warnings, numpy as np, pandas as pd
from pathnb.core import shared_data
from pathnb.wsi.synth import SynthTissue
from pathnb.wsi.slide import open_slide
from pathnb.wsi.tissue import segment_tissue, mask_scores, TissueMask
from pathnb.wsi.tiling import tile_slide, tissue_fraction, grid_1d

def lumen_mask(st, mpp):
    h, w = st.tissue_mask(mpp).shape
    X, Y = np.meshgrid((np.arange(w) + 0.5) * mpp, (np.arange(h) + 0.5) * mpp)
    m = np.zeros((h, w), bool)
    for cx, cy, r in st.lumens:
        m |= (X - cx) ** 2 + (Y - cy) ** 2 < (r - mpp) ** 2
    return m & ~st.pen_mask(mpp)

rows = []
for seed in range(5):
    for pf in (True, False):
        st = SynthTissue(12000, 9000, mpp=0.5, seed=seed, pen=pf, faint=pf)
        mpp = 8.0
        gt = st.tissue_mask(mpp)
        h, w = gt.shape
        pred = segment_tissue(st.render(0, 0, w, h, mpp=mpp), mpp)
        lum = lumen_mask(st, mpp)
        rows.append(dict(seed=seed, pen_and_faint=pf, **mask_scores(pred, gt),
                         pen_kept=float(pred[st.pen_mask(mpp)].mean()) if pf else np.nan,
                         faint_found=float(pred[st.faint_mask(mpp)].mean()) if pf else np.nan,
                         lumens_kept_open=float(1 - pred[lum].mean()) if lum.any() else np.nan))
ev = pd.DataFrame(rows)
print(ev.round(4).to_string(index=False))
print("MEAN", ev.mean(numeric_only=True).round(4).to_dict())

# the full pipeline: synthetic section written as a JPEG pyramidal TIFF, thumbnail read through the Slide, detect_tissue
import tempfile
from pathlib import Path
from pathnb.wsi.synth import write_pyramid_tiff
from pathnb.wsi.tissue import detect_tissue
tmp = Path(tempfile.mkdtemp())
rows = []
for seed in range(4):
    st = SynthTissue(6000, 4500, mpp=0.5, seed=seed)
    write_pyramid_tiff(tmp/f"s{seed}.tiff", st, fast=True)
    with open_slide(tmp/f"s{seed}.tiff") as s:
        for m in (8.0, 16.0):
            tm = detect_tissue(s, mpp=m, min_px=1)
            rows.append(dict(seed=seed, thumb_mpp=tm.mpp, **mask_scores(tm.mask, st.tissue_mask(tm.mpp)),
                             pen_kept=float(tm.mask[st.pen_mask(tm.mpp)].mean()),
                             faint_found=float(tm.mask[st.faint_mask(tm.mpp)].mean())))
ev2 = pd.DataFrame(rows)
print(ev2.round(4).to_string(index=False))
print("MEAN via TIFF", ev2.groupby("thumb_mpp").mean(numeric_only=True).round(4).to_dict("index"))

cmu = shared_data("slides/CMU-1-Small-Region.svs")
if cmu is None:
    print("CMU-1 absent: skipped")
else:
    with open_slide(cmu) as s:
        for kw in (dict(mpp=0.5), dict(magnification=20), dict(mpp=0.263)):
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                t = tile_slide(s, tile_px=224, **kw)
                ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _ = [t.read(s, i) for i in range(len(t))]
            tr = time.perf_counter() - t0
            print(f"CMU-1 {kw}: {len(t)} tiles; tile_slide (incl. tissue detection) best {min(ts):.3f} s = "
                  f"{len(t)/min(ts):.0f} tiles/s; reading tiles {len(t)/tr:.0f} tiles/s")

# grid + tissue fraction alone: a virtual 100k x 80k slide at 0.25 µm/px, mask at 8 µm/px
rng = np.random.default_rng(0)
W, H, smpp = 100_000, 80_000, 0.25
d = 8.0 / smpp
mask = np.zeros((int(np.ceil(H / d)), int(np.ceil(W / d))), bool)
mask[500:2000, 400:2600] = True
tm = TissueMask(mask, 8.0, d, (W, H))
t0 = time.perf_counter()
tile0 = 224 * 0.5 / smpp
xs, ys = grid_1d(W, tile0, tile0), grid_1d(H, tile0, tile0)
X, Y = np.meshgrid(xs, ys)
f = tissue_fraction(tm, X.ravel(), Y.ravel(), tile0)
dt = time.perf_counter() - t0
print(f"virtual 100k x 80k slide: {X.size} grid tiles, {(f >= 0.5).sum()} kept, grid + fraction in {dt:.3f} s = "
      f"{X.size/dt:,.0f} tiles/s")
