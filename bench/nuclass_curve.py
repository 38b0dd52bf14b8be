"""NuClass: does the gate's gain over the best single path depend on how much training data the paths get?

Trains Path local, Path global and the gate on 1, 2 or 4 synthetic sections (several training seeds each) and scores all
of them on the same two held-out sections (and the same validation section for the gate and temperature). Reports
macro-F1 of each path, of the gate and of the oracle (each cell takes whichever path is right: the ceiling of any gate
that chooses between the two paths), and the gate's gain over the best single path.

Usage: OMP_NUM_THREADS=1 python bench/nuclass_curve.py [--n-train 1,2,4] [--seeds 0,1,2] [--size 768] [--jobs 2]
Writes nuclass_curve.csv and nuclass_curve.png under --out.
"""
import argparse, time
from pathlib import Path
from multiprocessing import Pool
import numpy as np, pandas as pd

def _run(job):
    n, seed, a = job
    import torch
    from pathnb.core import seed_everything
    from pathnb.wsi.cells import CropSpec, NUCLASS_MARKERS
    from pathnb.nuclass.paths import TrainConfig
    from pathnb.nuclass.evaluation import synthetic_cohort, fit_nuclass, predict_nuclass, evaluate_nuclass
    torch.set_num_threads(1)
    seed_everything(seed)
    t0 = time.time()
    train = synthetic_cohort(range(1000, 1000 + n), a.size)
    val, test = synthetic_cohort([2000], a.size), synthetic_cohort([3000, 3001], a.size)   # the same for every run
    spec = CropSpec(local_px=24, context_px=128, crop_mpp=0.5, context_out_px=32)
    model, _ = fit_nuclass(train, val, spec, classes=list(NUCLASS_MARKERS),
                           cfg=TrainConfig(epochs=a.epochs, lr=3e-3, batch_size=64, seed=seed))
    R = evaluate_nuclass(predict_nuclass(model, test, label_key="true_type"), model.classes)
    m = R["macro_f1"]
    best = max(m["local"], m["glob"])
    row = dict(n_train=n, seed=seed, local=m["local"], glob=m["glob"], gate=m["gate"], oracle=m["oracle"],
               gain=m["gate"] - best, headroom=m["oracle"] - best, ece_cal=R["ece"]["gate_calibrated"],
               seconds=round(time.time() - t0))
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return row

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", default="1,2,4")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="bench/results")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    jobs = [(int(n), int(s), a) for n in a.n_train.split(",") for s in a.seeds.split(",")]
    with Pool(a.jobs) as pool:
        rows = pool.map(_run, sorted(jobs, key=lambda j: -j[0]))   # longest first
    df = pd.DataFrame(rows).sort_values(["n_train", "seed"])
    df.to_csv(out/"nuclass_curve.csv", index=False)
    g = df.groupby("n_train")[["local", "glob", "gate", "oracle", "gain", "headroom", "ece_cal"]]
    summ = g.mean().round(3).astype(str) + " ± " + g.std().round(3).astype(str)
    print(f"command: OMP_NUM_THREADS=1 python bench/nuclass_curve.py --n-train {a.n_train} --seeds {a.seeds} "
          f"--size {a.size} --epochs {a.epochs} --jobs {a.jobs}; wall {time.time() - t0:.0f} s")
    print("macro-F1 on the same two held-out sections, mean ± sd over training seeds:")
    print(summ.to_string())
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    mu, sd = g.mean(), g.std()
    for k, lab in (("local", "Path local"), ("glob", "Path global"), ("gate", "gate"), ("oracle", "oracle (ceiling)")):
        ax.errorbar(mu.index, mu[k], yerr=sd[k], marker="o", capsize=3, label=lab, ls="--" if k == "oracle" else "-")
    ax.set(xlabel="training sections", ylabel="macro-F1 (held-out sections)", xticks=list(mu.index))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out/"nuclass_curve.png", dpi=80)

if __name__ == "__main__":
    main()
