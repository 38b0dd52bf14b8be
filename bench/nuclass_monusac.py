"""NuClass on MoNuSAC (real H&E, 51 TCGA crops, 11 hospitals): label-noise report and hospital-grouped cross-validation.

    OMP_NUM_THREADS=2 python bench/nuclass_monusac.py labels   # -> bench/results/nuclass_monusac/labels.json
    OMP_NUM_THREADS=2 python bench/nuclass_monusac.py cv [--folds 5] [--epochs 2] [--max_folds N]
        -> bench/results/nuclass_monusac/cv.json (with the wall time); the stored run used --folds 5 --epochs 2
Needs the shared data folder real/monusac (CC BY-NC-SA 4.0; never copied into the repository).
"""

import argparse, json, os, platform, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from pathnb.core import shared_data, atomic_path
from pathnb.nuclass.masks import read_mask_folder, concat_cells, nuclass_cv_masks, MONUSAC_PALETTE

OUT = Path(__file__).parent / "results" / "nuclass_monusac"

# published nucleus sizes for the label-noise check: a lymphocyte nucleus is about 7 µm across (≈ 30-40 µm²)
PUBLISHED_UM2 = {"lymphocyte": [30, 40]}


def labels(min_distance_um=3.0):
    "Label noise that can be measured from the masks alone."
    d = shared_data("real/monusac")
    if d is None:
        sys.exit("real/monusac not found")
    t0 = time.time()
    S = read_mask_folder(d, margin_px=8, min_distance_um=min_distance_um)
    o = concat_cells(S).obs
    short = {a.uns["cells"]["image"]: min(a.uns["cells"]["width"], a.uns["cells"]["height"]) for _, a in S}
    o["short_px"] = o["image"].map(short)
    g = o.groupby("class", observed=True)
    res = dict(
        n_images=len(S),
        n_cells=int(len(o)),
        class_counts=g.size().to_dict(),
        components_per_class={
            c: int(v) for c, v in g["component"].apply(lambda s: len(set(zip(o.loc[s.index, "image"], s)))).items()
        },
        instances_per_component=g["inst_in_component"].mean().round(3).to_dict(),
        share_in_merged_components=g["inst_in_component"].apply(lambda s: float((s > 1).mean())).round(3).to_dict(),
        area_um2=g["area_um2"].describe(percentiles=[0.1, 0.5, 0.9]).round(1).T.to_dict(),
        published_area_um2=PUBLISHED_UM2,
        unassigned_mask_pixels=int(sum(a.uns["cells"]["unassigned_px"] for _, a in S)),
        share_in_crops_short_side_under_224px=g["short_px"].apply(lambda s: float((s < 224).mean())).round(3).to_dict(),
        cells_per_site=pd.crosstab(o["site"], o["class"]).to_dict(orient="index"),
        settings=dict(min_area_um2=6.0, min_distance_um=min_distance_um, slide_mpp=0.25, max_dist=100.0),
        seconds=round(time.time() - t0, 1),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    name = "labels.json" if min_distance_um == 3.0 else f"labels_mindist{min_distance_um:g}.json"
    with atomic_path(OUT / name) as tmp:
        Path(tmp).write_text(json.dumps(res, indent=1, default=float))
    print(
        json.dumps(
            {k: res[k] for k in ("class_counts", "instances_per_component", "share_in_crops_short_side_under_224px")},
            default=float,
        )
    )
    print("median area µm²:", {c: v["50%"] for c, v in res["area_um2"].items()})


def cv(folds=5, epochs=2, max_folds=None, pad="reflect", tag=""):
    d = shared_data("real/monusac")
    if d is None:
        sys.exit("real/monusac not found")
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res = nuclass_cv_masks(
        str(d),
        groups="tcga_tissue_source_site",
        folds=folds,
        epochs=epochs,
        max_folds=max_folds,
        pad=pad,
        json=str(OUT / f"cv{tag}.json"),
        device="cpu",
    )
    res["settings"]["bench_wall_seconds"] = round(time.time() - t0, 1)
    res["settings"]["machine"] = dict(
        cpus=os.cpu_count(),
        omp=os.environ.get("OMP_NUM_THREADS"),
        torch_threads=torch.get_num_threads(),
        python=platform.python_version(),
        torch=torch.__version__,
    )
    with atomic_path(OUT / f"cv{tag}.json") as tmp:
        Path(tmp).write_text(json.dumps(res, indent=1, default=float))
    print(
        json.dumps(
            dict(
                macro_f1=res["macro_f1"],
                ece=res["ece"],
                paired=res["paired"],
                wall_s=res["settings"]["bench_wall_seconds"],
            ),
            default=float,
        )
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["labels", "cv"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max_folds", type=int, default=None)
    p.add_argument("--pad", default="reflect")
    p.add_argument("--tag", default="")
    p.add_argument("--min_distance_um", type=float, default=3.0)
    a = p.parse_args()
    if a.what == "labels":
        labels(a.min_distance_um)
    else:
        cv(a.folds, a.epochs, a.max_folds, a.pad, a.tag)
