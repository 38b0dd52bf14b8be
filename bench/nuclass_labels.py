"""Marker-guided label accuracy vs the synthetic generator's truth, as a function of the confidence threshold.

Usage: OMP_NUM_THREADS=1 python bench/nuclass_labels.py [--size 1600] [--seeds 10,11,12]
"""
import argparse, json, time
from pathlib import Path
import pandas as pd
from pathnb.wsi.cells import SynthCells, NUCLASS_MARKERS
from pathnb.nuclass.labels import preprocess_cells, label_cells, label_accuracy_curve

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=1600)
p.add_argument("--seeds", default="10,11,12")
p.add_argument("--out", default="bench/results/nuclass_labels.csv")
a = p.parse_args()
t0, rows = time.time(), []
for s in map(int, a.seeds.split(",")):
    ad = preprocess_cells(SynthCells(a.size, a.size, seed=s).to_anndata())
    label_cells(ad, NUCLASS_MARKERS)
    rows.append(label_accuracy_curve(ad.obs.true_type, ad.obs.marker_label,
                                     ad.obs.marker_label_confidence).assign(seed=s, cells=ad.n_obs))
df = pd.concat(rows)
Path(a.out).parent.mkdir(parents=True, exist_ok=True)
df.to_csv(a.out, index=False)
print(f"{df.groupby('seed').cells.first().sum()} cells in {len(rows)} sections, {time.time() - t0:.0f} s")
print(df.groupby("threshold")[["kept", "accuracy", "macro_f1"]].mean().round(3).to_string())
