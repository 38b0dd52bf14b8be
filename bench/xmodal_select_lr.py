"""Is the full model behind ERM only because it keeps ERM's default learning rate?

`bench/xmodal_select.py` tunes ERM's learning rate but the regularised methods' own knobs only. This trains
the full model's default setting at ERM's other two learning rates (`selection_grid(..., tune_lr=True)`, lr ×½ and
×2) on exactly the same cohorts, splits and seeds (normalised inputs), stores their predictions beside
`seedS_predictions.csv.gz`, and compares ERM (3 settings) with the full model chosen among 3 and among 5
settings, by source validation and by the oracle.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_select_lr.py --seeds 0,1,2,3,4 [--jobs 2] [--report-only]
Writes bench/results/xmodal_select/full_lr_seedS_predictions.csv.gz and bench/results/xmodal_select/full_lr.md.
"""
import argparse, json, sys, time
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

sys.path.insert(0, str(Path(__file__).parent))
import xmodal_select as xs          # the same base configuration, cohort size and TTA settings

OUT = Path("bench/results/xmodal_select")

def extra_variants():
    "The full model's default setting at lr ×½ and ×2 (the settings xmodal_select.py did not train)."
    from pathnb.xmodal.dg import XModalConfig
    from pathnb.xmodal.evaluation import selection_grid
    return {k: v for k, v in selection_grid(XModalConfig(**xs.BASE), ["full"], tune_lr=True).items() if ",lr=" in k}

def _fold(args):
    f, seed = args
    torch.set_num_threads(1)
    from pathnb.xmodal.mammo import make_xmodal_cohort
    from pathnb.xmodal.dg import XModalConfig
    from pathnb.xmodal.evaluation import run_lodo
    c = make_xmodal_cohort(n_per_inst=xs.N_PER_INST, size=xs.BASE["img_size"], n_patches=1, seed=seed)
    return run_lodo(c, XModalConfig(**xs.BASE, seed=seed), extra_variants(), folds=[f], seed=seed, tta_kw=xs.TTA_KW,
                    normalize="macenko", log=lambda s: print(f"seed {seed} {s}", flush=True))

def table(seed):
    "ERM and the full model of one seed under each rule, with 3 and with 5 settings for the full model."
    from pathnb.xmodal.evaluation import select_by_validation
    from pathnb.evaluation.metrics import auc
    base = pd.read_csv(OUT/f"seed{seed}_predictions.csv.gz")
    extra = pd.read_csv(OUT/f"full_lr_seed{seed}_predictions.csv.gz")
    p3 = base[base.variant.str.startswith(("ERM|", "full|"))]
    p5 = pd.concat([p3, extra], ignore_index=True)
    row = dict(seed=seed)
    for rule in ("source", "oracle"):
        _, c3 = select_by_validation(p3, criterion=rule)
        _, c5 = select_by_validation(p5, criterion=rule)
        m3, m5 = c3.groupby("method").ood_auc.mean(), c5.groupby("method").ood_auc.mean()
        row[f"ERM {rule}"] = m3["ERM"]
        row[f"full (3) {rule}"] = m3["full"]
        row[f"full (5) {rule}"] = m5["full"]
        if rule == "source":
            row["full (5): folds choosing a new lr"] = int(c5[c5.method == "full"].chosen.str.contains(",lr=").sum())
    for k in extra_variants():   # each new setting alone, mean OOD AUC over folds
        e = extra[(extra.variant == k) & (extra.split == "OOD")]
        row[f"full at {k.split(',lr=')[1]} alone"] = np.mean([auc(g.y.values, g.prob.values)
                                                              for _, g in e.groupby("fold")])
    return row

def report(seeds):
    t = pd.DataFrame([table(s) for s in seeds]).set_index("seed")
    for r in ("source", "oracle"):
        t[f"full (5) − ERM, {r}"] = t[f"full (5) {r}"] - t[f"ERM {r}"]
    mean = t.mean().to_frame("mean").T
    sd = t.std(ddof=1).to_frame("sd").T
    runs = {s: json.loads((OUT/f"full_lr_seed{s}_wall.json").read_text()) for s in seeds
            if (OUT/f"full_lr_seed{s}_wall.json").exists()}
    env = next(iter(runs.values()), {})
    lines = ["# xmodal: the full model with ERM's learning rates too\n",
             f"command: `OMP_NUM_THREADS=1 python bench/xmodal_select_lr.py --seeds {','.join(map(str, seeds))}`; wall "
             + ", ".join(f"seed {s} {r['wall_s']} s" for s, r in runs.items())
             + (f"; torch {env.get('torch')}, numpy {env.get('numpy')}, timm {env.get('timm')}" if env else "") + "\n",
             "Normalised inputs, the cohorts, splits and seeds of `seedS_predictions.csv.gz`. "
             "ERM chooses among lr 2e-3, 1e-3, 4e-3; "
             "the full model among its 3 settings of `README.md` (3) or those plus its default at lr 1e-3 and 4e-3 "
             "(5). "
             "Mean OOD AUC over the four held-out institutions:\n",
             xs._md(pd.concat([t, mean, sd]).rename_axis("seed")), ""]
    (OUT/"full_lr.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return t

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if not a.report_only:
        import numpy, timm
        for s in seeds:
            t0 = time.time()
            with Pool(a.jobs) as pool:
                p = pd.concat(pool.map(_fold, [(f, s) for f in range(4)]), ignore_index=True)
            pf = OUT/f"full_lr_seed{s}_predictions.csv.gz"
            tmp = pf.with_suffix(".tmp.gz")
            p.to_csv(tmp, index=False)
            tmp.replace(pf)
            (OUT/f"full_lr_seed{s}_wall.json").write_text(json.dumps(dict(wall_s=round(time.time() - t0),
                                                                          torch=torch.__version__,
                                                                          numpy=numpy.__version__,
                                                                          timm=timm.__version__)))
    report(seeds)

if __name__ == "__main__":
    main()
