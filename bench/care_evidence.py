"""CARE evidence run: region recovery, slide->RNA retrieval, downstream tasks, training-step overhead.

Held-out synthetic cohort: CARE is trained on `--train` slides and evaluated on `--test` new slides of
the same synthetic "world" (same tissue types and molecular maps). Stage I and Stage II train through
`pathnb.train.fit`. About 4-5 minutes on one CPU core (use OMP_NUM_THREADS=1 on a shared machine:
oversubscribed OpenMP threads make torch many times slower).

    OMP_NUM_THREADS=1 python bench/care_evidence.py [--train 150 --test 60 --seed 0 --out bench/care_evidence.json]
"""
import argparse
import json
import time
import warnings
import numpy as np
import pandas as pd
import torch
from pathnb.core import seed_everything
from pathnb.care.data import make_care_cohort
from pathnb.care.regions import CareConfig, CareEncoder, care_encode
from pathnb.care.ssl import pretrain_care, SSLConfig
from pathnb.care.align import align_care, AlignConfig, retrieval_recall
from pathnb.care.evaluation import (kmeans_regions, grid_regions, region_recovery, embed_cohort, mean_pool,
                                    downstream_table, format_ci_table, care_step_overhead)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=150)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ssl_epochs", type=int, default=8)
    ap.add_argument("--rna_epochs", type=int, default=30)
    ap.add_argument("--protein_epochs", type=int, default=10)
    ap.add_argument("--merge_thr", type=float, default=0.3)
    ap.add_argument("--out", default="bench/care_evidence.json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    T = {}
    t0 = time.time()
    train = make_care_cohort(a.train, seed=0, sample_seed=1000 + a.seed)
    test = make_care_cohort(a.test, seed=0, sample_seed=5000 + a.seed)
    seed_everything(a.seed)
    enc0 = CareEncoder(CareConfig()).eval()

    def log(msg):
        print(f"[{time.time()-t0:6.0f}s] {msg}", flush=True)

    log("stage I")
    t = time.time()
    enc1, h1 = pretrain_care(train, ssl=SSLConfig(epochs=a.ssl_epochs, n_local=2, seed=a.seed))
    T["stage1_s"] = time.time() - t
    log("heads-only alignment")
    t = time.time()
    cfg0 = AlignConfig(epochs_rna=a.rna_epochs, epochs_protein=a.protein_epochs, lr_encoder=0, seed=a.seed)
    al0, _ = align_care(train, enc1, cfg0)
    T["heads_only_s"] = time.time() - t
    log("stage II")
    t = time.time()
    cfg2 = AlignConfig(epochs_rna=a.rna_epochs, epochs_protein=a.protein_epochs, seed=a.seed)
    al2, h2 = align_care(train, enc1, cfg2)
    T["stage2_s"] = time.time() - t
    enc2, k, m = al2.encoder, enc1.cfg.k, a.merge_thr
    log("region recovery")
    # 1. region recovery
    reg = region_recovery({
        "k-means on tile features (true k)": lambda s: kmeans_regions(s, len(np.unique(s.comp))),
        f"fixed {k}x{k} grid": lambda s: grid_regions(s, k),
        "ARG, random-init encoder": lambda s: care_encode(enc0, s)["assign"],
        "ARG, after stage I": lambda s: care_encode(enc1, s)["assign"],
        "ARG, after stage II": lambda s: care_encode(enc2, s)["assign"],
        f"ARG + merge {m}, after stage I": lambda s: care_encode(enc1, s, merge_thr=m)["assign"],
        f"ARG + merge {m}, after stage II": lambda s: care_encode(enc2, s, merge_thr=m)["assign"],
    }, test)
    # 2. retrieval
    ret = pd.DataFrame({"stage I encoder + trained heads (frozen)": retrieval_recall(al0, test),
                        "after stage II": retrieval_recall(al2, test),
                        "stage I + heads, protein": retrieval_recall(al0, test, "protein"),
                        "after stage II, protein": retrieval_recall(al2, test, "protein")}).T
    log("downstream")
    # 3. downstream
    E1tr, E1te = embed_cohort(enc1, train), embed_cohort(enc1, test)
    E2tr, E2te = embed_cohort(enc2, train), embed_cohort(enc2, test)
    embs = {"mean pooling (tiles)": (mean_pool(train), mean_pool(test)),
            "CARE slide z, stage I": (E1tr["slide"], E1te["slide"]), "CARE ROI, stage I": (E1tr["roi"], E1te["roi"]),
            "CARE slide z, stage II": (E2tr["slide"], E2te["slide"]), "CARE ROI, stage II": (E2tr["roi"], E2te["roi"])}
    t = time.time()
    down = downstream_table(embs, train, test, abmil=True, n_boot=1000, mil_epochs=30, seed=a.seed)
    T["downstream_s"] = time.time() - t
    # 4. overhead
    ov = care_step_overhead(enc2, test.slides[:16], reps=10)
    T["total_s"] = time.time() - t0
    pd.set_option("display.width", 200)
    print("== 1. region recovery (ARI vs planted compartments, held-out slides, 95% bootstrap CI over slides)")
    print(reg.round(3).to_string())
    print("== 2. slide->molecule retrieval on held-out slides")
    print(ret.round(3).to_string())
    print("== 3. downstream (fit on train cohort, score held-out; 95% bootstrap CI)")
    print(format_ci_table(down).to_string())
    print("== 4. training-step overhead", {k_: round(v, 2) for k_, v in ov.items()})
    print("== stage I history (first/last)", h1[0], h1[-1])
    print("== stage II history (first/last)", h2[0], h2[-1])
    print("== timings", {k_: round(v, 1) for k_, v in T.items()})
    res = dict(args=vars(a), regions=reg.reset_index().to_dict("records"),
               retrieval=ret.reset_index().to_dict("records"),
               downstream={i: {c: list(down.loc[i, c]) for c in down.columns} for i in down.index},
               overhead=ov, timings=T, stage1_history=h1, stage2_history=h2)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1, default=float)


if __name__ == "__main__":
    main()
