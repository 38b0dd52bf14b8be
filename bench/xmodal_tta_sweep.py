"""Sensitivity of causal test-time adaptation (CausalTTA) to its settings, leave one institution out.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_tta_sweep.py [--seed 0] [--out bench/results/xmodal_tta_sweep] [--jobs 2]
       [--orders 1]

Per held-out institution, trains ERM and the full model (MixStyle + IRM + alignment) once with the benchmark's
settings (bench/xmodal_lodo.py defaults: 300 steps, 120 patients per institution, 48 px), then adapts each to the
held-out institution with every combination of mode (episodic / continual), steps per batch (1 / 5), learning rate
(1e-3 / 1e-2), anchor weight (1 / 0), source-statistics weight (1 / 0) and adapters (adapted or LayerNorm only):
64 settings. Patients arrive in a fixed random order, 32 per batch; labels are never read by the adaptation.
With --orders K every setting is repeated for K arrival orders (order 0 is the one a plain run uses; batches, and so
the adaptation, depend on the order).
Writes tta_seed<S>.csv (--orders 1) or tta_seed<S>_orders<K>.csv (one row per fold, model, order and setting: held-out
AUC) and prints the summary.
"""
import argparse, time
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

GRID = [dict(mode=m, steps=s, lr=lr, anchor=an, stat_weight=sw, adapters=ad)
        for m in ("episodic", "continual") for s in (1, 5) for lr in (1e-3, 1e-2) for an in (1.0, 0.0)
        for sw in (1.0, 0.0) for ad in (True, False)]

def _fold(args):
    f, a = args
    torch.set_num_threads(1)
    from pathnb.xmodal.mammo import make_xmodal_cohort
    from pathnb.xmodal.dg import XModalConfig, predict_xmodal
    from pathnb.xmodal.evaluation import run_lodo
    from pathnb.xmodal.tta import CausalTTA
    from pathnb.evaluation.metrics import auc
    c = make_xmodal_cohort(n_per_inst=a.n_per_inst, size=a.img_size, n_patches=1, seed=a.seed)
    te = np.flatnonzero(c.domain == f)
    rows = []
    orders = [np.random.default_rng(a.seed).permutation(te)] + [np.random.default_rng([a.seed, k]).permutation(te)
                                                                for k in range(1, a.orders)]
    base = XModalConfig(img_size=a.img_size, steps=a.steps, batch_per_env=8, irm_anneal=150, lr=0.002, seed=a.seed,
                        irm_weight=1.0, mix_layers=(-1,), align_negatives="domain")
    names = {(): "ERM", (("align", True), ("irm", True), ("mixstyle", True)): "full"}
    def sweep(fold, switches, m, te):   # run_lodo trains (its split and seeds); adapt the trained model every way
        name, t0 = names[tuple(sorted(switches.items()))], time.time()
        rows.append(dict(fold=c.institutions[f].name, model=name, setting="none",
                         auc=auc(c.label[te], predict_xmodal(m, c, te)["prob"])))
        for o, order in enumerate(orders):
            for g in GRID:
                torch.manual_seed(a.seed)
                p = CausalTTA(m, **g).predict(c, order)
                rows.append(dict(fold=c.institutions[f].name, model=name,
                                 setting=" ".join(f"{k}={v}" for k, v in g.items()), auc=auc(c.label[order], p["prob"]),
                                 **({"order": o} if a.orders > 1 else {})))
        print(f"fold {f} {name}: adapted {len(GRID)} ways × {len(orders)} orders in {time.time() - t0:.0f} s",
              flush=True)
    run_lodo(c, base, {"ERM": dict(train={}, tta=False),
                       "full": dict(train=dict(mixstyle=True, irm=True, align=True), tta=False)},
             folds=[f], seed=a.seed, on_model=sweep)
    return pd.DataFrame(rows)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/xmodal_tta_sweep")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n-per-inst", type=int, default=120)
    ap.add_argument("--img-size", type=int, default=48)
    ap.add_argument("--orders", type=int, default=1,
                    help="arrival orders of the held-out patients per setting (order 0 = a plain run's)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with Pool(a.jobs) as pool:
        r = pd.concat(pool.map(_fold, [(f, a) for f in range(4)]), ignore_index=True)
    dest = out/(f"tta_seed{a.seed}.csv" if a.orders == 1 else f"tta_seed{a.seed}_orders{a.orders}.csv")
    tmp = dest.with_suffix(".tmp")
    r.to_csv(tmp, index=False)
    tmp.replace(dest)
    if a.orders > 1:
        per = (r[r.setting != "none"].groupby(["order", "model", "setting"]).auc.mean()
               - r[r.setting == "none"].groupby("model").auc.mean())
        spread = per.groupby(["model", "setting"]).agg(["min", "max", "std"])
        print("change from no adaptation per arrival order (mean over folds): spread over orders per setting")
        print(spread.describe().round(3).to_string())
        print("\nbest setting of each order:\n" + per.groupby(["order", "model"]).agg(["idxmax", "max"]).to_string())
    t = r.groupby(["model", "setting"]).auc.mean().unstack(0)
    d = t - t.loc["none"]
    print(f"mean held-out AUC over the four folds, seed {a.seed}; change from no adaptation:")
    print(d.describe().round(3).to_string())
    for mdl in d.columns:
        print(f"\n{mdl}: best 5 and worst 3 settings\n"
              + d[mdl].sort_values(ascending=False).iloc[list(range(5)) + [-3, -2, -1]].round(3).to_string())

if __name__ == "__main__":
    main()
