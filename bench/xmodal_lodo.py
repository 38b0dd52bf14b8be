"""Leave-one-institution-out benchmark of the radiology–pathology model on the synthetic cohort.

Usage: OMP_NUM_THREADS=1 python bench/xmodal_lodo.py [--out bench/results/xmodal] [--steps 250] [--n-per-inst 150]
       [--jobs 2] [--cohort default|shortcut] [--morph-noise 0.25] [--folds 2]
       [--irm-weight 1] [--mix-layers -1] [--mix-p 0.5] [--mix-alpha 0.1] [--tta-steps 1] [--tta-lr 0.001]
       [--align-weight 0.5] [--align-negatives domain|all] [--normalize none|macenko|reinhard]
       [--mammo-norm histogram|domain|none] [--variants +IRM,full]
Writes predictions.csv.gz, summary.csv, reliance.csv, localisation.csv, cost.json and report.md under --out.
reliance.csv: per variant and cue, the OOD AUC on (malignant, benign) pairs where the spurious cue points the
right way (aligned) and the wrong way (conflict), and their difference (reliance; 0 = cue ignored), for the
biopsy clip (mammography head, fused) and the second stain protocol (histology head, fused).
"""
import argparse, json, time, os
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd, torch

def _layers(s):
    return tuple(x if x == "input" else int(x) for x in str(s).split(","))

def _cohort(a):
    ("The benchmark cohort: the default four institutions, or the shortcut cohort (cues beat morphology in training, "
     "reverse at the last institution).")
    from pathnb.xmodal.mammo import make_xmodal_cohort, shortcut_institutions
    insts = shortcut_institutions(morph_noise=a.morph_noise) if a.cohort == "shortcut" else None
    return make_xmodal_cohort(n_per_inst=a.n_per_inst, institutions=insts, size=a.img_size, n_patches=1, seed=a.seed)

def _folds(a):
    "Held-out institutions: --folds, else all four (default cohort) or only the reversed institution (shortcut cohort)."
    if a.folds:
        return [int(f) for f in a.folds.split(",")]
    return [2] if a.cohort == "shortcut" else list(range(4))

def _fold(args):
    f, a = args
    torch.set_num_threads(1)
    from pathnb.xmodal.dg import XModalConfig
    from pathnb.xmodal.evaluation import run_lodo, localisation_scores, VARIANTS
    c = _cohort(a)
    if a.normalize != "none":   # seed 001's preprocessing; references from the training institutions of this fold only
        from pathnb.xmodal.mammo import CohortNormalizer
        c = CohortNormalizer(a.normalize, None if a.mammo_norm == "none" else a.mammo_norm,
                             seed=a.seed).fit(c, np.flatnonzero(c.domain != f)).transform(c)
    cfg = XModalConfig(img_size=a.img_size, steps=a.steps, batch_per_env=a.batch_per_env, irm_anneal=a.irm_anneal,
                       lr=a.lr, seed=a.seed, irm_weight=a.irm_weight, mix_layers=_layers(a.mix_layers), mix_p=a.mix_p,
                       mix_alpha=a.mix_alpha,
                       align_weight=a.align_weight, align_negatives=a.align_negatives)
    locs = []
    def on_model(fold, sw, m, te):
        if sw in ({}, dict(mixstyle=True, irm=True, align=True), dict(align=True)):
            name = {0: "ERM", 3: "full", 1: "+alignment"}[len(sw)]
            l = localisation_scores(m, c, te).reset_index().rename(columns={"index": "map"})
            l["model"] = name
            l["fold"] = c.institutions[fold].name
            locs.append(l)
    t0 = time.time()
    todo = {k: v for k, v in VARIANTS.items() if a.variants == "all" or k in a.variants.split(",")}
    p = run_lodo(c, cfg, todo, folds=[f], seed=a.seed, log=lambda s: print(s, flush=True), on_model=on_model,
                 tta_kw=dict(mode="episodic", steps=a.tta_steps, lr=a.tta_lr))
    print(f"fold {f} done in {time.time() - t0:.0f} s", flush=True)
    return p, (pd.concat(locs) if locs else pd.DataFrame(columns=["map", "pointing", "iou", "model", "fold"]))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/xmodal")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--n-per-inst", type=int, default=150)
    ap.add_argument("--img-size", type=int, default=48)
    ap.add_argument("--batch-per-env", type=int, default=8)
    ap.add_argument("--irm-anneal", type=int, default=125)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--irm-weight", type=float, default=1.0)
    ap.add_argument("--mix-layers", default="-1", help='comma-separated: "input", -1 (patch embeddings), block indices')
    ap.add_argument("--mix-p", type=float, default=0.5)
    ap.add_argument("--mix-alpha", type=float, default=0.1)
    ap.add_argument("--tta-steps", type=int, default=1)
    ap.add_argument("--tta-lr", type=float, default=1e-3)
    ap.add_argument("--align-weight", type=float, default=0.5)
    ap.add_argument("--align-negatives", default="domain", choices=["all", "domain"])
    ap.add_argument("--normalize", default="none", choices=["none", "macenko", "reinhard"],
                    help="stain-normalise H&E with this method (CohortNormalizer), "
                         "references from each fold's training institutions")
    ap.add_argument("--mammo-norm", default="domain", choices=["histogram", "domain", "none"],
                    help="with --normalize: mammogram intensity matching per image (histogram), "
                         "per institution (domain) or none")
    ap.add_argument("--variants", default="all",
                    help='comma-separated subset of ERM,+MixStyle,+IRM,+alignment,+TTA,full '
                         '(e.g. a sweep of one setting)')
    ap.add_argument("--cohort", default="default", choices=["default", "shortcut"],
                    help="default: four institutions, morphology determines the label; "
                         "shortcut: shortcut_institutions() (clip and stain protocol "
                         "agree with the label 90 %%/80 %% in training and 10 %% at the held-out institution, "
                         "morphology flipped for --morph-noise of patients)")
    ap.add_argument("--morph-noise", type=float, default=0.25,
                    help="with --cohort shortcut: P(a patient's images show the other diagnosis)")
    ap.add_argument("--folds", default="",
                    help="comma-separated institutions to hold out "
                         "(default: all four; the last one for --cohort shortcut)")
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild report.md/summary.csv from the predictions, localisation and cost already in --out "
                         "(no training)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.report_only:
        pf = out/"predictions.csv.gz" if (out/"predictions.csv.gz").exists() else out/"predictions.csv"
        preds, loc = pd.read_csv(pf), pd.read_csv(out/"localisation.csv")
        head = next(l for l in (out/"report.md").read_text().splitlines() if l.startswith("command:"))
        # the run's own settings
        a = ap.parse_args(head.split("xmodal_lodo.py", 1)[1].split("`")[0].split() + ["--report-only"])
    else:
        with Pool(min(a.jobs, len(_folds(a)))) as pool:
            res = pool.map(_fold, [(f, a) for f in _folds(a)])
        preds = pd.concat([r[0] for r in res], ignore_index=True)
        loc = pd.concat([r[1] for r in res], ignore_index=True)
    from pathnb.xmodal.evaluation import lodo_summary, step_times
    from pathnb.xmodal.model import XModalViT, param_counts
    from pathnb.xmodal.dg import XModalConfig
    if not a.report_only:   # (a report-only run leaves the inputs as they are)
        preds.to_csv(out/"predictions.csv.gz", index=False)   # gzipped: about 80 kB, kept for later analyses
        loc.to_csv(out/"localisation.csv", index=False)
    s = lodo_summary(preds, n_boot=a.n_boot, seed=a.seed)
    s.to_csv(out/"summary.csv")
    sm = {k: lodo_summary(preds, col=k, n_boot=200, seed=a.seed)[["ood_auc", "id_auc", "gap"]]
          for k in ("prob_mammo", "prob_histo")}
    torch.set_num_threads(1)
    if a.report_only:
        cost = json.loads((out/"cost.json").read_text())
    else:
        cost = dict(params=param_counts(XModalViT(img_size=a.img_size)),
                    step=step_times(XModalConfig(img_size=a.img_size), batch=24, n=10))
        (out/"cost.json").write_text(json.dumps(cost, indent=1))
    locm = loc.groupby(["model", "map"])[["pointing", "iou"]].mean()
    from pathnb.evaluation.metrics import auc
    c = _cohort(a)
    cue = pd.DataFrame([dict(institution=inst.name, malignant=c.label[c.domain == d].mean(),
                             auc_stain_batch=auc(c.label[c.domain == d], c.stain_batch[c.domain == d].astype(float)),
                             auc_clip=auc(c.label[c.domain == d], c.clip[c.domain == d].astype(float)))
                        for d, inst in enumerate(c.institutions)]).set_index("institution")
    # the ID test set pools three institutions, the OOD one is a single institution: AUC over pooled institutions also
    # ranks institutions against each other, so the like-for-like in-domain number is the mean within-institution AUC
    pi = preds.assign(inst=c.domain[preds.patient.values])
    within = {v: np.mean([np.mean([auc(h.y.values, h.prob.values) for _, h in g.groupby("inst")])
                          for _, g in gv.groupby("fold")])
              for v, gv in pi[pi.split == "ID"].groupby("variant", sort=False)}
    wt = s[["ood_auc", "id_auc", "gap"]].rename(columns=dict(id_auc="id_auc_pooled", gap="gap_pooled"))
    wt["id_auc_within"] = pd.Series(within)
    wt["gap_within"] = wt.id_auc_within - wt.ood_auc
    from pathnb.xmodal.evaluation import cue_reliance
    rel = pd.concat({(cn, hn): cue_reliance(preds, cv, col)
                     for cn, cv in (("clip", c.clip), ("stain_batch", c.stain_batch))
                     for hn, col in (("mammo", "prob_mammo"), ("histo", "prob_histo"), ("fused", "prob"))},
                    names=["cue", "head"])
    rel.round(4).to_csv(out/"reliance.csv")
    relw = rel.reliance.unstack(["cue", "head"])[[("clip", "mammo"), ("clip", "fused"), ("stain_batch", "histo"),
                                                  ("stain_batch", "fused")]].reindex(s.index)
    if not a.report_only:
        head = (f"command: `OMP_NUM_THREADS=1 python bench/xmodal_lodo.py "
                f"""{' '.join(f'--{k.replace(chr(95), chr(45))} {v}'
                              for k, v in vars(a).items() if k != 'report_only' and v != '')}`"""
                f"; wall {time.time() - t0:.0f} s")
        import numpy, timm   # results move with the torch build (bench/results/xmodal_select/README.md): record it
        head += f"; torch {torch.__version__}, numpy {numpy.__version__}, timm {timm.__version__}"
    rep = [f"# xmodal LODO benchmark\n", head + "\n",
           "## Spurious cues in the cohort (AUC of the cue alone for malignancy, per institution)\n",
           cue.round(3).to_string(),
           "\n## Patient-level (fused) AUC\n", s.round(3).to_string(),
           "\n## In-domain AUC pooled over the three source institutions vs within each (mean), "
           "and the gap of each\n",
           wt.round(3).to_string(),
           "\n## Reliance on the spurious cues (OOD; aligned-pair − conflict-pair AUC, mean over folds; "
           "0 = cue ignored)\n",
           relw.round(3).to_string(),
           "\n## Mammography head only\n", sm["prob_mammo"].round(3).to_string(),
           "\n## Histology head only\n", sm["prob_histo"].round(3).to_string(),
           "\n## Localisation (OOD patients, mean over folds)\n", locm.round(3).to_string(),
           "\n## Cost\n", json.dumps(cost, indent=1)]
    (out/"report.md").write_text("\n".join(rep))
    print("\n".join(rep))

if __name__ == "__main__":
    main()
