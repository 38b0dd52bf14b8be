"""NuClass synthetic benchmark: macro-F1 of Path local, Path global and the gate on held-out sections,
per-class F1, oracle accuracy / complementarity, ECE before/after temperature scaling, reliability
diagram and Grad-CAM figures. Labels for training are the marker-guided labels (confident cells);
evaluation is against the generator's truth.

Usage: OMP_NUM_THREADS=1 python bench/nuclass_benchmark.py [--size 768] [--n-train 4] [--n-test 2] [--epochs 6]
       [--global-input context+local|context] [--budding 0.05] [--gamma 2] [--seed 0] [--first-section 1000]

--global-input context: the ablation where Path global sees only the context field (no local vector),
so the two paths fail on different cells. --budding: share of stromal cells that are isolated tumour
cells (their nucleus, not their context, gives them away).
"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from pathnb.core import seed_everything, shared_data
from pathnb.wsi.cells import CropSpec, NUCLASS_MARKERS, open_cell_slide
from pathnb.nuclass.paths import TrainConfig
from pathnb.nuclass.gate import Gate, train_gate, predict_gate
from pathnb.evaluation.metrics import f1_macro
from pathnb.nuclass.evaluation import (synthetic_cohort, fit_nuclass, predict_nuclass, evaluate_nuclass,
                                       plot_reliability, nuclass_cams, plot_cams)

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=768)
p.add_argument("--n-train", type=int, default=4)
p.add_argument("--n-test", type=int, default=2)
p.add_argument("--epochs", type=int, default=6)
p.add_argument("--local-px", type=int, default=24)
p.add_argument("--context-px", type=int, default=128)
p.add_argument("--global-input", choices=["context+local", "context"], default="context+local")
p.add_argument("--budding", type=float, default=0.0)
p.add_argument("--first-section", type=int, default=1000)
p.add_argument("--gamma", type=float, default=2.0,
               help="uncertainty exponent of Path global's loss, (1 - p_local(y))^gamma (0: plain CE)")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default="bench/results/nuclass")
a = p.parse_args()
torch.set_num_threads(a.threads)
seed_everything(a.seed)
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
t0 = time.time()
cohort = synthetic_cohort(range(a.first_section, a.first_section + a.n_train + 1 + a.n_test), a.size,
                          budding_fraction=a.budding)
train, val, test = cohort[:a.n_train], cohort[a.n_train:a.n_train + 1], cohort[a.n_train + 1:]
spec = CropSpec(local_px=a.local_px, context_px=a.context_px, crop_mpp=0.5, context_out_px=32)
cfg = TrainConfig(epochs=a.epochs, lr=3e-3, batch_size=64, seed=a.seed, gamma=a.gamma)
n_conf = sum(int(x.obs.marker_label_confident.sum()) for _, x in train)
model, Pval = fit_nuclass(train, val, spec, classes=list(NUCLASS_MARKERS), cfg=cfg,
                          global_uses_local=a.global_input == "context+local")
Pt = predict_nuclass(model, test, label_key="true_type")
R = evaluate_nuclass(Pt, model.classes)
lab_acc = float(np.mean([(x.obs.marker_label.astype(str) == x.obs.true_type.astype(str))
                         [x.obs.marker_label_confident].mean() for _, x in train]))
# where the paths and the gate are right, by the cell's distance to the nearest tumour nest (0 = inside a nest)
y = Pt["y"].numpy()
right = {k: (Pt[p].argmax(1).numpy() == y) for k, p in (("local", "p_local"), ("global", "p_global"),
                                                        ("gate", "p_mix"))}
dist = np.concatenate([x.obs.nest_distance_um.to_numpy() for _, x in test])
bins = pd.cut(dist, [-1, 0, 8, 25, 40, np.inf], labels=["in nest", "0-8 um", "8-25 um", "25-40 um", "> 40 um"])
by_dist = pd.DataFrame(dict(n=1, **{f"acc_{k}": v for k, v in right.items()}, mean_g=Pt["g"].numpy())).groupby(
    bins, observed=True).agg(dict(n="sum", acc_local="mean", acc_global="mean", acc_gate="mean", mean_g="mean"))
one = right["local"] ^ right["global"]
gate_check = dict(cells_one_path_right=int(one.sum()),
                  gate_follows_right_path=float(((Pt["g"].numpy() > 0.5) == right["global"])[one].mean()),
                  val_local_only=int((Pval["p_local"].argmax(1) == Pval["y"])
                                     .logical_and(Pval["p_global"].argmax(1) != Pval["y"]).sum()),
                  val_global_only=int((Pval["p_global"].argmax(1) == Pval["y"])
                                      .logical_and(Pval["p_local"].argmax(1) != Pval["y"]).sum()),
                  val_cells=len(Pval["y"]))
# is the gate's shortfall a training problem? Fit a fresh gate on one test section and apply it to the other
# (an optimistic gate: same kind of data as its test), against the paths on that section.
n0 = test[0][1].n_obs
parts = [np.arange(n0), np.arange(n0, len(y))]
sub = lambda m: {k: v[m] for k, v in Pt.items() if torch.is_tensor(v) and len(v) == len(y)}
crossfit = []
for i, j in ((0, 1), (1, 0)):
    gt = Gate(Pt["feat_local"].shape[1], Pt["feat_global"].shape[1])
    train_gate(gt, sub(parts[i]), Pt["y"][parts[i]], seed=a.seed)
    pm, yj = predict_gate(gt, sub(parts[j]))["p_mix"].numpy(), y[parts[j]]
    crossfit.append(dict(fit_on=i, test_on=j, local=f1_macro(yj, Pt["p_local"][parts[j]].numpy().argmax(1)),
                         glob=f1_macro(yj, Pt["p_global"][parts[j]].numpy().argmax(1)),
                         gate_val=f1_macro(yj, Pt["p_mix"][parts[j]].numpy().argmax(1)),
                         gate_crossfit=f1_macro(yj, pm.argmax(1))))
gate_check["crossfit"] = crossfit
res = dict(args=vars(a), seconds=round(time.time() - t0), train_cells_confident=n_conf,
           train_label_accuracy=round(lab_acc, 3), test_cells=len(Pt["y"]),
           temperature=model.temperature, macro_f1=R["macro_f1"], ece=R["ece"], mean_gate=R["mean_gate"],
           gate_check=gate_check,
           per_class=R["per_class"].round(4).to_dict(), complementarity=R["complementarity"].round(4).to_dict(),
           by_nest_distance=by_dist.round(4).to_dict())
(out/"results.json").write_text(json.dumps(res, indent=1, default=float))
fig = plot_reliability(Pt)
fig.savefig(out/"reliability.png", dpi=72)
plt.close(fig)
sl, ad = test[0]
xy = ad.obsm["spatial"]
inner = ((xy > a.context_px / 2) & (xy < a.size - a.context_px / 2)).all(1)   # whole context field on the section
pick = [int(np.flatnonzero(inner & (ad.obs.true_type == c).to_numpy())[0]) for c in model.classes]
fig = plot_cams(nuclass_cams(model, sl, xy[pick]), model.classes)
fig.savefig(out/"gradcam_synthetic.png", dpi=72)
plt.close(fig)
cmu = shared_data("slides/CMU-1-Small-Region.svs")
if cmu is None:
    print("skipped real Grad-CAM: CMU-1 absent")
else:
    from scipy import ndimage as ndi
    with open_cell_slide(cmu) as s:
        th = s.read_region(0, 0, 555, 741, mpp=s.mpp * 4).astype(float)
        dk = ndi.gaussian_filter(th.mean(-1), 1.5)
        c = np.argwhere((dk == ndi.minimum_filter(dk, 9)) & (dk < np.percentile(dk, 5)))[:, ::-1] * 4.0
        c = c[(c.min(1) > 100) & (c[:, 0] < s.dimensions[0] - 100) & (c[:, 1] < s.dimensions[1] - 100)][:6]
        fig = plot_cams(nuclass_cams(model, s, c), ["CMU-1"] * len(c), n=6)
        fig.savefig(out/"gradcam_cmu1.png", dpi=72)
        plt.close(fig)
print(json.dumps({k: res[k] for k in ("seconds", "train_cells_confident", "train_label_accuracy", "test_cells",
                                      "temperature", "macro_f1", "ece", "mean_gate", "gate_check")},
                 indent=1, default=float))
print(R["per_class"].round(3).to_string())
print(R["complementarity"].round(3).to_string())
print(by_dist.round(3).to_string())
print("gate fitted on one test section, applied to the other:")
print(pd.DataFrame(crossfit).round(4).to_string(index=False))
