"""What can Path local see that it should not? Diagnoses context leaking into the local crop of the synthetic sections.

For the context pairs (TIL vs lymphocyte, CAF vs fibroblast) it measures, on rendered sections, the colour of the ring
around each nucleus and trains a classifier (gradient boosting, leave-one-section-out) on (a) ring colour statistics and
(b) the local crop with the cell's own nucleus masked out. Both pairs draw their nuclei from the same distribution, so a
balanced accuracy well above 0.5 means the crop's surroundings reveal the class. Stromal cells are also reported by
distance to the nearest nest: only cells within ~8 µm (the crop's half-diagonal) can legitimately see a nest.

Usage: OMP_NUM_THREADS=1 python bench/nuclass_leak.py [--size 768] [--seeds 1000,1001,1002,1003] [--local-px 24]
"""
import argparse, time
import numpy as np, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from pathnb.wsi.cells import SynthCells, ArraySlide, CropSpec, read_cell_crops

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=768)
p.add_argument("--seeds", default="1000,1001,1002,1003")
p.add_argument("--local-px", type=int, default=24)
a = p.parse_args()
t0, L = time.time(), a.local_px

def features(st):
    img = st.render(0, 0, st.width_px, st.height_px)
    loc, _ = read_cell_crops(ArraySlide(img, st.mpp), st.xy_px, CropSpec(local_px=L, context_px=L, crop_mpp=st.mpp,
                                                                         context_out_px=L), context=False)
    c = (np.arange(L) + 0.5 - L / 2) * st.mpp
    X, Y = np.meshgrid(c, c)
    ring, masked = [], []
    for i in range(st.n_cells):
        r, e = st.nuc_r[i], st.nuc_elong[i]
        ra, rb = r * np.sqrt(e), r / np.sqrt(e)
        cs, sn = np.cos(st.theta[i]), np.sin(st.theta[i])
        # outside the cell's own nucleus
        bg = ((cs * X + sn * Y) / ra) ** 2 + ((-sn * X + cs * Y) / rb) ** 2 > 1.6
        im = loc[i].astype(float)
        px = im[bg] if bg.any() else im.reshape(-1, 3)
        ring.append(np.r_[px.mean(0), px.std(0), (px.mean(1) < 150).mean()])
        m = im.copy()
        m[~bg] = 0
        masked.append(m.reshape(L // 4, 4, L // 4, 4, 3).mean((1, 3)).ravel())
    return np.array(ring), np.array(masked)

D = []
for s in map(int, a.seeds.split(",")):
    st = SynthCells(a.size, a.size, seed=s)
    R, M = features(st)
    D.append((st, R, M))
names = D[0][0].type_names
rows = []
for k, n in enumerate(names):
    R = np.concatenate([d[1][d[0].types == k] for d in D])
    rows.append(dict(type=n, cells=len(R), ring_R=R[:, 0].mean(), ring_G=R[:, 1].mean(), ring_B=R[:, 2].mean(),
                     ring_dark_fraction=R[:, 6].mean()))
print("mean colour of the crop outside the cell's own nucleus, per true type")
print(pd.DataFrame(rows).set_index("type").round(3).to_string())

def loso(pair, which, sel):
    ia, ib = names.index(pair[0]), names.index(pair[1])
    acc = []
    def XY(ds):
        ms = [np.isin(d[0].types, [ia, ib]) & sel(d[0]) for d in ds]
        return (np.concatenate([d[which][m] for d, m in zip(ds, ms)]),
                np.concatenate([d[0].types[m] == ia for d, m in zip(ds, ms)]))
    for k in range(len(D)):
        Xt, yt = XY([d for j, d in enumerate(D) if j != k])
        Xe, ye = XY([D[k]])
        if len(np.unique(yt)) < 2 or len(np.unique(ye)) < 2:
            continue
        pr = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(Xt, yt).predict(Xe)
        acc.append(0.5 * ((pr[ye] == 1).mean() + (pr[~ye] == 0).mean()))
    return float(np.mean(acc))

subsets = {"all cells": lambda st: np.ones(st.n_cells, bool), "stromal cells": lambda st: ~st.nest,
           "stromal, > 8 µm from a nest": lambda st: st.nest_distance_um > 8}
rows = [dict(pair=f"{p[0]} vs {p[1]}", cells=nm, ring_stats=loso(p, 1, f), nucleus_masked_crop=loso(p, 2, f))
        for p in (("TIL", "lymphocyte"), ("CAF", "fibroblast")) for nm, f in subsets.items()]
print("\nbalanced accuracy, leave-one-section-out (0.5 = the crop's surroundings say nothing about the class)")
print(pd.DataFrame(rows).set_index(["pair", "cells"]).round(3).to_string())
print(f"\n{sum(d[0].n_cells for d in D)} cells in {len(D)} sections of {a.size} px, local crop {L} px at 0.5 µm/px; "
      f"{time.time() - t0:.0f} s")
