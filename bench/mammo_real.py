"""The cross-modal model's mammography branch alone on real films (mini-MIAS, Suckling et al. 1994).

Usage: OMP_NUM_THREADS=1 python bench/mammo_real.py [--out bench/results/mammo_real] [--size 224] [--steps 150]
       [--init-weights vit.safetensors --embed-dim 192 --depth 12 --heads 3 --patch 16] [--films 0]
Needs the shared data folder real/mini_mias (322 MLO films, 161 women). Writes results.json, oof.csv and summary.md.
`--resummarise` recomputes the summary (per-fold AUCs included) of a finished run from its oof.csv without training.

Two tasks, each with patient-grouped, stratified 5-fold cross-validation (both films of a woman in the same fold):
abnormal vs normal (all 322 films) and malignant vs benign (the 115 abnormal films). AUCs of the pooled out-of-fold
predictions with 95 % patient-bootstrap intervals. Localisation: on abnormal films with a lesion centre, the fraction
whose `loc`-head peak (head trained on the training folds' lesion circles) falls inside the lesion circle, against
chance (circle area / breast area) and against the brightest breast pixel. Baselines: logistic regression on a
breast-intensity histogram with texture (GLCM) features, and a shortcut one on film geometry only (breast area,
film width, border brightness).
"""

import argparse, json, time, os
from pathlib import Path
import numpy as np, pandas as pd, torch


def load_films(root, size, limit=0):
    "Films (oriented, windowed, resized), masks, lesion circles and the per-film table."
    from pathnb.xmodal.mammo import read_mammogram, film_area

    lab = pd.read_csv(root / "labels.csv")
    rows, imgs, masks, les, geo = [], [], [], [], []
    names = sorted(lab.image.unique())
    if limit:
        names = names[:limit]
    yy, xx = np.mgrid[:size, :size]
    for name in names:
        g = lab[lab.image == name]
        mg = read_mammogram(root / "images" / name, size=size, laterality=g.side.iloc[0])
        abn = int((g.abnormality != "NORM").any())
        mal = int((g.severity == "M").any()) if abn else -1
        circ = np.zeros((size, size), bool)
        has_centre = False
        for _, r in g.dropna(subset=["x_512"]).iterrows():
            s = size / 512
            x = (511 - r.x_512 if mg.flipped else r.x_512) * s
            rad = max(r.radius_512 if r.radius_512 == r.radius_512 else 4.0, 4.0) * s
            circ |= (xx - x) ** 2 + (yy - r.y_512_from_top * s) ** 2 <= rad**2
            has_centre = True
        f = mg.film
        geo.append([mg.mask.mean(), f.any(0).mean(), mg.image[f & ~mg.mask].mean() if (f & ~mg.mask).any() else 0.0])
        rows.append(
            dict(
                image=name,
                patient=g.patient.iloc[0],
                abnormal=abn,
                malignant=mal,
                has_centre=has_centre,
                tissue=g.background_tissue.iloc[0],
            )
        )
        imgs.append(mg.image)
        masks.append(mg.mask)
        les.append(circ)
    return pd.DataFrame(rows), np.stack(imgs), np.stack(masks), np.stack(les), np.asarray(geo, np.float32)


def texture_features(img, mask):
    "Breast-intensity histogram (16 bins), moments, and GLCM contrast/homogeneity/energy/correlation at 2 distances."
    from skimage.feature import graycomatrix, graycoprops

    v = img[mask]
    h = np.histogram(v, 16, (0, 1))[0] / max(len(v), 1)
    mom = [v.mean(), v.std(), ((v - v.mean()) ** 3).mean() / (v.std() ** 3 + 1e-8)]
    q = np.clip((img * 31).astype(np.uint8), 0, 31)
    q[~mask] = 0
    glcm = graycomatrix(q, [1, 4], [0, np.pi / 2], levels=32, symmetric=True, normed=True)
    tex = [graycoprops(glcm, p).mean(1) for p in ("contrast", "homogeneity", "energy", "correlation")]
    return np.concatenate([h, mom, np.concatenate(tex)]).astype(np.float32)


def folds(t, label_col, k, seed):
    "Patient-grouped stratified folds over the rows of `t` (label in `label_col`)."
    from sklearn.model_selection import StratifiedGroupKFold

    f = np.zeros(len(t), int)
    for i, (_, te) in enumerate(
        StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(t, t[label_col], t.patient)
    ):
        f[te] = i
    return f


def lr_oof(X, y, fold):
    "Out-of-fold probabilities of a standardised, L2-regularised logistic regression."
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline

    p = np.zeros(len(y))
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        m = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(X[tr], y[tr])
        p[te] = m.predict_proba(X[te])[:, 1]
    return p


def model_oof(imgs, les, y, fold, a, want_loc):
    "Out-of-fold probabilities (and loc heatmaps) of the xmodal model's mammography branch alone."
    from pathnb.xmodal.mammo import XModalCohort
    from pathnb.xmodal.dg import XModalConfig, fit_xmodal, predict_xmodal

    n = len(y)
    c = XModalCohort(
        imgs.astype(np.float32),
        les,
        np.zeros((n, 0, a.size, a.size, 3), np.uint8),
        y.astype(int),
        np.zeros(n, int),
        np.zeros(n, int),
        np.zeros(n, bool),
        ["mini-MIAS"],
    )
    cfg = XModalConfig(
        img_size=a.size,
        patch_size=a.patch,
        embed_dim=a.embed_dim,
        depth=a.depth,
        num_heads=a.heads,
        steps=a.steps,
        batch_per_env=a.batch,
        lr=a.lr,
        modality="mammo",
        init_weights=a.init_weights,
        grade_weight=0.0,
        device="cpu",
        seed=a.seed,
    )
    p = np.zeros(n)
    loc = np.zeros((n, (a.size // a.patch) ** 2), np.float32)
    for f in np.unique(fold):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        model, _ = fit_xmodal(c, tr, cfg)
        o = predict_xmodal(model, c, te)
        p[te] = o["prob_mammo"]
        loc[te] = o["loc"]
        print(f"  fold {f}: trained on {len(tr)}, {time.time() - T0:.0f}s", flush=True)
    return p, loc


def ci(y, p, groups, n_boot, seed):
    "AUC with a 95 % patient-bootstrap interval."
    from pathnb.evaluation.metrics import auc, bootstrap_ci

    r = bootstrap_ci(auc, y, p, n=n_boot, seed=seed, groups=groups)
    return dict(auc=round(r[0], 3), lo=round(r[1], 3), hi=round(r[2], 3))


def peak_inside(maps, les, masks, grid):
    "Per film: is the peak of a (grid×grid) map (restricted to the breast) inside the lesion circle?"
    import torch.nn.functional as F

    S = les.shape[-1]
    out = []
    for m, l, b in zip(maps, les, masks):
        up = F.interpolate(
            torch.as_tensor(m, dtype=torch.float32).reshape(1, 1, grid, grid), size=(S, S), mode="nearest"
        )[0, 0].numpy()
        up = np.where(b, up, -np.inf)
        i = np.unravel_index(np.argmax(up), up.shape)
        out.append(bool(l[i]))
    return np.asarray(out)


def main():
    global T0
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/mammo_real")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--init-weights", default=None, help="timm ViT state dict (.safetensors/.pth) of the same size, e.g. pretrained"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--films", type=int, default=0, help="use only the first n films (smoke runs); 0: all 322")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--resummarise", action="store_true", help="only recompute the summary of the run in --out (no training)"
    )
    a = ap.parse_args()
    if a.resummarise:
        return resummarise(a.out)
    torch.set_num_threads(1)
    T0 = time.time()
    from pathnb.core import shared_data, atomic_write_text

    root = shared_data("real/mini_mias")
    if root is None:
        raise SystemExit("skipped: shared data real/mini_mias not found")
    t, imgs, masks, les, geo = load_films(root, a.size, a.films)
    print(f"{len(t)} films loaded at {a.size}px in {time.time() - T0:.0f}s", flush=True)
    feats = np.stack([texture_features(i, m) for i, m in zip(imgs, masks)])
    res = dict(config=vars(a), n_films=len(t), n_patients=int(t.patient.nunique()), tasks={})
    oof = t.copy()
    grid = a.size // a.patch
    for task, sel, col in (
        ("abnormal_vs_normal", np.ones(len(t), bool), "abnormal"),
        ("malignant_vs_benign", t.abnormal.values == 1, "malignant"),
    ):
        ts = t[sel].reset_index(drop=True)
        y = ts[col].values.astype(int)
        fold = folds(ts, col, a.folds, a.seed)
        print(f"{task}: {len(ts)} films, {y.sum()} positive", flush=True)
        p_model, loc = model_oof(imgs[sel], les[sel], y, fold, a, task == "abnormal_vs_normal")
        p_tex = lr_oof(feats[sel], y, fold)
        p_geo = lr_oof(geo[sel], y, fold)
        g = ts.patient.values
        r = dict(
            n=len(ts),
            n_pos=int(y.sum()),
            model=ci(y, p_model, g, a.n_boot, a.seed),
            texture_lr=ci(y, p_tex, g, a.n_boot, a.seed),
            shortcut_geometry_lr=ci(y, p_geo, g, a.n_boot, a.seed),
        )
        if task == "abnormal_vs_normal":
            ok = ts.has_centre.values & (y == 1)
            hit = peak_inside(loc[ok], les[sel][ok], masks[sel][ok], grid)
            bright = peak_inside(
                [
                    np.asarray(torch.nn.functional.adaptive_avg_pool2d(torch.as_tensor(im)[None, None], grid)).ravel()
                    for im in imgs[sel][ok]
                ],
                les[sel][ok],
                masks[sel][ok],
                grid,
            )
            chance = les[sel][ok].sum((1, 2)) / masks[sel][ok].sum((1, 2))
            r["localisation"] = dict(
                n=int(ok.sum()),
                loc_head_hit=round(float(hit.mean()), 3),
                brightest_region_hit=round(float(bright.mean()), 3),
                chance=round(float(np.clip(chance, 0, 1).mean()), 3),
            )
        res["tasks"][task] = r
        oof.loc[sel, f"{task}_model"] = p_model
        oof.loc[sel, f"{task}_texture"] = p_tex
        oof.loc[sel, f"{task}_geometry"] = p_geo
        print(json.dumps(r), flush=True)
    res["seconds"] = round(time.time() - T0, 1)
    summarise(res, oof, a)


TASKS = (("abnormal_vs_normal", "abnormal"), ("malignant_vs_benign", "malignant"))
METHODS = (("model", "model"), ("texture_lr", "texture"), ("shortcut_geometry_lr", "geometry"))


def summarise(res, oof, a):
    "Add per-fold AUCs (mean and range over the folds) to `res`; write results.json, oof.csv and summary.md."
    from pathnb.evaluation.metrics import auc
    from pathnb.core import atomic_write_text

    for task, col in TASKS:
        ts = oof if task == "abnormal_vs_normal" else oof[oof.abnormal == 1]
        ts = ts.reset_index(drop=True)
        fold = folds(ts, col, a.folds, a.seed)  # the same folds as the run (deterministic)
        for key, m in METHODS:
            per = [auc(ts[col].values[fold == f], ts[f"{task}_{m}"].values[fold == f]) for f in np.unique(fold)]
            res["tasks"][task][key]["fold_mean"] = round(float(np.mean(per)), 3)
            res["tasks"][task][key]["fold_min"] = round(float(np.min(per)), 3)
            res["tasks"][task][key]["fold_max"] = round(float(np.max(per)), 3)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(res, indent=1))
    atomic_write_text(out / "oof.csv", oof.to_csv(index=False))
    lines = [
        "| task | films (pos.) | xmodal mammography branch | texture + histogram LR | shortcut: film geometry LR |",
        "|---|---|---|---|---|",
    ]

    def f(d):
        per = f"per fold {d['fold_mean']:.3f} ({d['fold_min']:.2f}–{d['fold_max']:.2f})"
        return f"{d['auc']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]; {per}"

    for task, r in res["tasks"].items():
        cells = [f(r[k]) for k in ("model", "texture_lr", "shortcut_geometry_lr")]
        lines.append(f"| {task.replace('_', ' ')} | {r['n']} ({r['n_pos']}) | " + " | ".join(cells) + " |")
    L = res["tasks"]["abnormal_vs_normal"].get("localisation")
    if L:
        lines += [
            "",
            f"Localisation ({L['n']} abnormal films with a lesion centre): loc-head peak inside the lesion circle "
            f"{L['loc_head_hit']:.1%}; brightest breast region {L['brightest_region_hit']:.1%}; "
            f"chance (circle area / breast area) {L['chance']:.1%}.",
        ]
    c = res["config"]
    lines += [
        "",
        f"AUC of pooled out-of-fold predictions [95 % patient-bootstrap interval, {c['n_boot']} resamples]; "
        "per fold: mean (min–max) "
        f"of the {c['folds']} folds' own AUCs. Patient-grouped stratified {c['folds']}-fold CV. "
        f"Model: {c['size']}px, patch {c['patch']}, width {c['embed_dim']}, depth {c['depth']}, "
        f"{c['steps']} steps of batch {c['batch']}, "
        f"weights {'from ' + c['init_weights'] if c['init_weights'] else 'random init'}. {res['seconds']:.0f}s on CPU.",
    ]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def resummarise(out):
    "Recompute the per-fold numbers and summary.md from a finished run's results.json and oof.csv (no training)."
    res = json.loads((Path(out) / "results.json").read_text())
    oof = pd.read_csv(Path(out) / "oof.csv")
    summarise(res, oof, argparse.Namespace(**{**res["config"], "out": out}))


if __name__ == "__main__":
    main()
