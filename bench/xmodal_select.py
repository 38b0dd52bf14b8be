"""Hyperparameter selection for the leave-one-institution-out benchmark, by training-domain validation.

Every method gets the same small budget of settings (three, the first being the default used everywhere
else). For each held-out institution, each method's setting is chosen by the AUC on the validation
patients of the three *source* institutions (run_lodo's "ID" split, never used for training), as in
DomainBed's training-domain validation; the held-out institution is never looked at. The oracle choice
(best AUC on the held-out institution itself) is reported beside it as an upper bound that no deployment
can reach.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_select.py --seed 0 [--out bench/results/xmodal_select]
       [--normalize macenko|none] [--jobs 2] [--report-only]
Writes under --out: seedS_predictions.csv.gz (every setting), seedS_choices.csv, seedS.md; README.md summarises the
seeds present.
By default the inputs are normalised (CohortNormalizer, Macenko + one mammogram intensity mapping per institution,
references from the fold's source institutions), as in bench/results/xmodal_norm_seedS, whose settings the default
configurations repeat; with --normalize none they are raw, as in bench/results/xmodal (seed 0) and xmodal_seedS.
"""
import argparse, json, time
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

BASE = dict(img_size=48, steps=300, batch_per_env=8, irm_anneal=150, lr=2e-3, irm_weight=1.0, mix_layers=(-1,),
            mix_p=0.5, mix_alpha=0.1, align_weight=0.5, align_negatives="domain")
TTA_KW = dict(mode="episodic", steps=1, lr=1e-3)
N_PER_INST = 120

def grid():
    ("family -> list of (setting name, train switches, tta); the first setting of each family is the default "
     "(pathnb's `selection_grid`).")
    from pathnb.xmodal.dg import XModalConfig
    from pathnb.xmodal.evaluation import selection_grid
    out = {}
    for name, v in selection_grid(XModalConfig(**BASE)).items():
        out.setdefault(name.split("|")[0], []).append((name, v["train"], v["tta"]))
    return out

def variants():
    return {name: dict(train=train, tta=tta) for sets in grid().values() for name, train, tta in sets}

def _fold(args):
    f, seed, normalize = args
    torch.set_num_threads(1)
    from pathnb.xmodal.mammo import make_xmodal_cohort
    from pathnb.xmodal.dg import XModalConfig
    from pathnb.xmodal.evaluation import run_lodo
    c = make_xmodal_cohort(n_per_inst=N_PER_INST, size=BASE["img_size"], n_patches=1, seed=seed)
    t0 = time.time()
    p = run_lodo(c, XModalConfig(**BASE, seed=seed), variants(), folds=[f], seed=seed, tta_kw=TTA_KW,
                 normalize=None if normalize == "none" else normalize, log=lambda s: print(s, flush=True))
    print(f"fold {f} done in {time.time() - t0:.0f} s", flush=True)
    return p

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/xmodal_select")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--normalize", default="macenko", choices=["macenko", "reinhard", "none"],
                    help="input normalisation per fold (none: raw inputs)")
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild the reports from the stored predictions (no training)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    pf = out/f"seed{a.seed}_predictions.csv.gz"
    t0 = time.time()
    if not a.report_only:
        with Pool(a.jobs) as pool:
            preds = pd.concat(pool.map(_fold, [(f, a.seed, a.normalize) for f in range(4)]), ignore_index=True)
        tmp = pf.with_suffix(".tmp.gz")
        preds.to_csv(tmp, index=False)
        tmp.replace(pf)
        import numpy, timm
        (out/f"seed{a.seed}_wall.json").write_text(json.dumps(dict(wall_s=round(time.time() - t0),
                                                                   torch=torch.__version__, numpy=numpy.__version__,
                                                                   timm=timm.__version__)))
    report(out, a)

def _md(df, index=True):
    "A pandas table as a markdown table (without the optional tabulate dependency)."
    d = df.reset_index() if index else df
    fmt = lambda x: f"{x:.3f}" if isinstance(x, (float, np.floating)) else str(x)
    return "\n".join(["| " + " | ".join(map(str, d.columns)) + " |", "|" + "---|" * len(d.columns)] +
                     ["| " + " | ".join(fmt(x) for x in r) + " |" for r in d.itertuples(index=False)])

def _defaults(preds):
    "The predictions of each method's first (default) setting, with the variant renamed to the method."
    first = {sets[0][0]: f for f, sets in grid().items()}
    return preds[preds.variant.isin(list(first))].assign(variant=lambda d: d.variant.map(first))

def _within(preds, domain):
    ("Mean within-institution AUC of the ID split per variant (the like-for-like in-domain number; "
     "pooling ranks institutions against each other).")
    from pathnb.evaluation.metrics import auc
    p = preds[preds.split == "ID"].assign(inst=domain[preds[preds.split == "ID"].patient.values])
    return pd.Series({v: np.mean([np.mean([auc(h.y.values, h.prob.values) for _, h in g.groupby("inst")])
                                  for _, g in gv.groupby("fold")])
                      for v, gv in p.groupby("variant", sort=False)})

def seed_tables(preds, seed, n_boot=1000):
    ("Per method: OOD AUC of the default setting, of the source-selected one (with CI and gap) and of the oracle one; "
     "the choices.")
    from pathnb.xmodal.evaluation import select_by_validation, lodo_summary
    from pathnb.xmodal.mammo import make_xmodal_cohort
    dom = make_xmodal_cohort(n_per_inst=N_PER_INST, size=BASE["img_size"], n_patches=1, seed=seed).domain
    dflt = _defaults(preds)
    src, choices = select_by_validation(preds)
    orc, _ = select_by_validation(preds, criterion="oracle")
    sd, ss, so = (lodo_summary(x, n_boot=n_boot, seed=seed) for x in (dflt, src, orc))
    t = pd.DataFrame({"default": sd.ood_auc, "default_gap_within": _within(dflt, dom) - sd.ood_auc,
                      "selected": ss.ood_auc, "selected_lo": ss.ood_lo, "selected_hi": ss.ood_hi,
                      "selected_gap_within": _within(src, dom) - ss.ood_auc,
                      "oracle": so.ood_auc}).reindex(list(grid()))
    for k in ("default", "selected", "oracle"):
        t[f"{k}_minus_erm"] = t[k] - t.loc["ERM", k]
    return t, choices

def report(out, a):
    from pathnb.evaluation.metrics import auc
    preds = pd.read_csv(out/f"seed{a.seed}_predictions.csv.gz")
    t, choices = seed_tables(preds, a.seed, a.n_boot)
    t.index.name = "method"
    choices.to_csv(out/f"seed{a.seed}_choices.csv", index=False)
    t.to_csv(out/f"seed{a.seed}_summary.csv")
    ref = Path("bench/results")/(f"xmodal_norm_seed{a.seed}" if a.normalize == "macenko"
                                 else "xmodal" if a.seed == 0 else f"xmodal_seed{a.seed}")
    ref = (ref/"predictions.csv.gz" if (ref/"predictions.csv.gz").exists()
           else ref/"predictions.csv")   # the defaults repeat that run
    chk = ""
    if ref.exists():
        r = pd.read_csv(ref)
        m = _defaults(preds)
        j = m.merge(r, on=["fold", "variant", "split", "patient"], suffixes=("", "_ref"))
        old = {v: np.mean([auc(h.y.values, h.prob.values) for _, h in g.groupby("fold")])
               for v, g in r[r.split == "OOD"].groupby("variant")}
        chk = (f"The default settings repeat `{ref.parent.name}`: {len(j)} of {len(m)} predictions paired, "
               f"max |difference| "
               f"{np.abs(j.prob - j.prob_ref).max():.2g}; mean OOD AUC there / here: "
               + ", ".join(f"{f} {old[f]:.3f} / {t.loc[f, 'default']:.3f}" for f in t.index) + ".\n")
    run = json.loads((out/f"seed{a.seed}_wall.json").read_text()) if (out/f"seed{a.seed}_wall.json").exists() else {}
    wall = run.get("wall_s", float("nan"))
    env = ", ".join(f"{k} {run[k]}" for k in ("torch", "numpy", "timm") if k in run)
    lines = [f"# xmodal: settings chosen by training-domain validation, seed {a.seed}\n",
             f"command: `OMP_NUM_THREADS=1 python bench/xmodal_select.py --seed {a.seed}"
             f"{'' if a.normalize == 'macenko' else f' --normalize {a.normalize} --out {a.out}'}`; wall {wall} s"
             + (f"; {env}" if env else "") + "\n", chk,
             "Settings tried per method (the first is the default):\n"]
    lines += [f"- {f}: " + "; ".join(f"`{n.split('|', 1)[1]}`" for n, _, _ in sets) for f, sets in grid().items()]
    lines += ["", "Mean OOD AUC over the four held-out institutions; gap = mean within-institution ID AUC − OOD AUC:\n",
              _md(t), "", "Choices (source validation) per held-out institution:\n",
              _md(choices.assign(chosen=choices.chosen.str.split("|").str[1]), index=False), ""]
    (out/f"seed{a.seed}.md").write_text("\n".join(lines))
    summarise(out, a.normalize)

def summarise(out, normalize="macenko"):
    "README.md over the seeds present: each method minus ERM under each rule, mean ± sd."
    ts = {int(p.name[4:].split("_")[0]): pd.read_csv(p, index_col=0)
          for p in sorted(out.glob("seed*_summary.csv"))}
    if not ts:
        return
    rows = []
    for m in next(iter(ts.values())).index:
        r = {"method": m}
        for k in ("default", "selected", "oracle"):
            v = np.array([t.loc[m, k] for t in ts.values()])
            d = np.array([t.loc[m, f"{k}_minus_erm"] for t in ts.values()])
            r[f"{k} OOD"] = " / ".join(f"{x:.3f}" for x in v) + f" ({v.mean():.3f})"
            r[f"{k} − ERM"] = f"{d.mean():+.3f} ± {d.std(ddof=1) if len(d) > 1 else 0:.3f}"
        g = np.array([t.loc[m, "selected_gap_within"] for t in ts.values()])
        r["selected gap (within)"] = f"{g.mean():.3f}"
        rows.append(r)
    s = pd.DataFrame(rows).set_index("method")
    txt = ["# xmodal: every method tuned the same way, chosen without the target\n",
           f"Seeds {sorted(ts)}; one `seedS.md` per seed (command, settings, choices). "
           "`python bench/xmodal_select.py --seed S`, "
           + ("normalised inputs as in `../xmodal_norm_seedS`" if normalize == "macenko"
              else f"inputs: --normalize {normalize} (`../xmodal`, `../xmodal_seedS`)")
           + "; three settings per method (the first the default); the setting of each "
           "method is chosen per held-out institution by the AUC on the source institutions' held-back patients "
           "(DomainBed's training-domain validation); the oracle picks by the held-out institution's own AUC "
           "(an upper bound, not a method). "
           "Per-seed OOD AUC (mean), and each method minus ERM under the same rule (mean ± sd over seeds):\n",
           _md(s[[c for k in ("default", "selected", "oracle") for c in (f"{k} OOD", f"{k} − ERM")]
                 + ["selected gap (within)"]]), ""]
    (out/"README.md").write_text("\n".join(txt))

if __name__ == "__main__":
    main()
