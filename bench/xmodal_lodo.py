"""Leave-one-institution-out benchmark of the radiology–pathology model on the synthetic cohort.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_lodo.py [--out bench/results/xmodal] [--steps 250] [--n-per-inst 150] [--jobs 2]
Writes predictions.csv, summary.csv, localisation.csv, cost.json and report.md under --out.
"""
import argparse, json, time, os
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

def _fold(args):
    f, a = args
    torch.set_num_threads(1)
    from pathnb.mammo import make_xmodal_cohort
    from pathnb.xmodal_dg import XModalConfig
    from pathnb.xmodal_eval import run_lodo, localisation_scores, VARIANTS
    c = make_xmodal_cohort(n_per_inst=a.n_per_inst, size=a.img_size, n_patches=1, seed=a.seed)
    cfg = XModalConfig(img_size=a.img_size, steps=a.steps, batch_per_env=a.batch_per_env, irm_anneal=a.irm_anneal, lr=a.lr, seed=a.seed)
    locs = []
    def on_model(fold, sw, m, te):
        if sw in ({}, dict(mixstyle=True, irm=True, align=True), dict(align=True)):
            name = {0: "ERM", 3: "full", 1: "+alignment"}[len(sw)]
            l = localisation_scores(m, c, te).reset_index().rename(columns={"index": "map"}); l["model"] = name; l["fold"] = c.institutions[fold].name
            locs.append(l)
    t0 = time.time()
    p = run_lodo(c, cfg, VARIANTS, folds=[f], seed=a.seed, log=lambda s: print(s, flush=True), on_model=on_model)
    print(f"fold {f} done in {time.time() - t0:.0f} s", flush=True)
    return p, pd.concat(locs)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/xmodal"); ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--n-per-inst", type=int, default=150); ap.add_argument("--img-size", type=int, default=48)
    ap.add_argument("--batch-per-env", type=int, default=8); ap.add_argument("--irm-anneal", type=int, default=125)
    ap.add_argument("--lr", type=float, default=2e-3); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2); ap.add_argument("--n-boot", type=int, default=1000)
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with Pool(a.jobs) as pool: res = pool.map(_fold, [(f, a) for f in range(4)])
    preds = pd.concat([r[0] for r in res], ignore_index=True); loc = pd.concat([r[1] for r in res], ignore_index=True)
    from pathnb.xmodal_eval import lodo_summary, step_times
    from pathnb.xmodal_model import XModalViT, param_counts
    from pathnb.xmodal_dg import XModalConfig
    preds.to_csv(out/"predictions.csv", index=False); loc.to_csv(out/"localisation.csv", index=False)
    s = lodo_summary(preds, n_boot=a.n_boot, seed=a.seed); s.to_csv(out/"summary.csv")
    sm = {k: lodo_summary(preds, col=k, n_boot=200, seed=a.seed)[["ood_auc", "id_auc", "gap"]] for k in ("prob_mammo", "prob_histo")}
    torch.set_num_threads(1)
    cost = dict(params=param_counts(XModalViT(img_size=a.img_size)), step=step_times(XModalConfig(img_size=a.img_size), batch=24, n=10))
    (out/"cost.json").write_text(json.dumps(cost, indent=1))
    locm = loc.groupby(["model", "map"])[["pointing", "iou"]].mean()
    rep = [f"# xmodal LODO benchmark\n", f"command: `OMP_NUM_THREADS=1 python bench/xmodal_lodo.py {' '.join(f'--{k.replace(chr(95), chr(45))} {v}' for k, v in vars(a).items())}`; wall {time.time() - t0:.0f} s\n",
           "## Patient-level (fused) AUC\n", s.round(3).to_string(), "\n## Mammography head only\n", sm["prob_mammo"].round(3).to_string(),
           "\n## Histology head only\n", sm["prob_histo"].round(3).to_string(), "\n## Localisation (OOD patients, mean over folds)\n", locm.round(3).to_string(),
           "\n## Cost\n", json.dumps(cost, indent=1)]
    (out/"report.md").write_text("\n".join(rep)); print("\n".join(rep))

if __name__ == "__main__": main()
