"""Sensitivity of causal test-time adaptation (CausalTTA) to its settings, leave one institution out.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_tta_sweep.py [--seed 0] [--out bench/results/xmodal_tta_sweep] [--jobs 2]

Per held-out institution, trains ERM and the full model (MixStyle + IRM + alignment) once with the benchmark's
settings (bench/xmodal_lodo.py defaults: 300 steps, 120 patients per institution, 48 px), then adapts each to the
held-out institution with every combination of mode (episodic / continual), steps per batch (1 / 5), learning rate
(1e-3 / 1e-2), anchor weight (1 / 0), source-statistics weight (1 / 0) and adapters (adapted or LayerNorm only):
64 settings. Patients arrive in one fixed random order, 32 per batch; labels are never read by the adaptation.
Writes tta_seed<S>.csv (one row per fold, model and setting: held-out AUC) and prints the summary.
"""
import argparse, time
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

GRID = [dict(mode=m, steps=s, lr=lr, anchor=an, stat_weight=sw, adapters=ad)
        for m in ("episodic", "continual") for s in (1, 5) for lr in (1e-3, 1e-2) for an in (1.0, 0.0) for sw in (1.0, 0.0) for ad in (True, False)]

def _fold(args):
    f, a = args
    torch.set_num_threads(1)
    from pathnb.mammo import make_xmodal_cohort
    from pathnb.xmodal_dg import XModalConfig, predict_xmodal
    from pathnb.xmodal_eval import run_lodo
    from pathnb.xmodal_tta import CausalTTA
    from pathnb.metrics import auc
    c = make_xmodal_cohort(n_per_inst=a.n_per_inst, size=a.img_size, n_patches=1, seed=a.seed)
    te = np.flatnonzero(c.domain == f); order = np.random.default_rng(a.seed).permutation(te); rows = []
    base = XModalConfig(img_size=a.img_size, steps=a.steps, batch_per_env=8, irm_anneal=150, lr=0.002, seed=a.seed, irm_weight=1.0, mix_layers=(-1,), align_negatives="domain")
    names = {(): "ERM", (("align", True), ("irm", True), ("mixstyle", True)): "full"}
    def sweep(fold, switches, m, te):   # run_lodo trains (its split and seeds); adapt the trained model every way
        name, t0 = names[tuple(sorted(switches.items()))], time.time()
        rows.append(dict(fold=c.institutions[f].name, model=name, setting="none", auc=auc(c.label[te], predict_xmodal(m, c, te)["prob"])))
        for g in GRID:
            torch.manual_seed(a.seed)
            p = CausalTTA(m, **g).predict(c, order)
            rows.append(dict(fold=c.institutions[f].name, model=name, setting=" ".join(f"{k}={v}" for k, v in g.items()), auc=auc(c.label[order], p["prob"])))
        print(f"fold {f} {name}: adapted 64 ways in {time.time() - t0:.0f} s", flush=True)
    run_lodo(c, base, {"ERM": dict(train={}, tta=False), "full": dict(train=dict(mixstyle=True, irm=True, align=True), tta=False)},
             folds=[f], seed=a.seed, on_model=sweep)
    return pd.DataFrame(rows)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--out", default="bench/results/xmodal_tta_sweep")
    ap.add_argument("--jobs", type=int, default=2); ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n-per-inst", type=int, default=120); ap.add_argument("--img-size", type=int, default=48)
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    with Pool(a.jobs) as pool: r = pd.concat(pool.map(_fold, [(f, a) for f in range(4)]), ignore_index=True)
    dest = out/f"tta_seed{a.seed}.csv"; tmp = dest.with_suffix(".tmp"); r.to_csv(tmp, index=False); tmp.replace(dest)
    t = r.groupby(["model", "setting"]).auc.mean().unstack(0)
    d = t - t.loc["none"]
    print(f"mean held-out AUC over the four folds, seed {a.seed}; change from no adaptation:")
    print(d.describe().round(3).to_string())
    for mdl in d.columns: print(f"\n{mdl}: best 5 and worst 3 settings\n" + d[mdl].sort_values(ascending=False).iloc[list(range(5)) + [-3, -2, -1]].round(3).to_string())

if __name__ == "__main__": main()
