"""Throughput of `pathnb run` over many slides with one job versus several (`run_manifest(..., jobs=N)`).

Writes N small synthetic pyramidal slides once into bench/_cache/jobs/ (git-ignored), then runs the same manifest
with `jobs=1` (one slide after another in this process) and with `jobs=J` (J slides at once, each in its own
process, `threads` = CPU cores // J), each into a fresh output folder, and prints slides per second for both and
their ratio, from this one invocation, and how long a fresh process takes to import what a job needs. It also
checks that both runs give the same summary (statuses and tile counts) and, with `--encoder test-vit`,
bit-identical features. The machine's load average before and after is printed, because on a shared machine the
ratio says as much about the neighbours as about pathnb.

    OMP_NUM_THREADS=1 python bench/jobs_bench.py [--slides 6] [--size 4000] [--jobs 2] [--encoder test-vit]

Writes bench/results/jobs/jobs_<label>.json.
"""
from __future__ import annotations
import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT/"bench"/"_cache"/"jobs"
RESULTS = ROOT/"bench"/"results"/"jobs"


def _slides(n:int, size:int)->Path:
    "Write (once) `n` synthetic slides of `size` × 0.75·`size` px at 0.5 µm/px and their manifest; return it."
    from pathnb.wsi.synth import write_synth_slide
    import pandas as pd
    CACHE.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        p = CACHE/f"synth{size}_{i}.tiff"
        if not p.exists():
            write_synth_slide(p, size, size * 3 // 4, mpp=0.5, seed=i)
        names.append(p.name)
    man = CACHE/f"manifest_{size}_{n}.csv"
    pd.DataFrame({"slide": names}).to_csv(man, index=False)
    return man


def _run(man:Path, out:Path, jobs:int, kw:dict)->tuple[float, object]:
    "Wall seconds of one `run_manifest` into a fresh `out`, and its summary."
    from pathnb.wsi.runs import run_manifest
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summ = run_manifest(man, out, jobs=jobs, show_progress=False, overview=False, **kw)
    return time.perf_counter() - t0, summ


def _startup(encoder:str|None)->float:
    "Seconds a fresh Python process takes to import what a job process imports before its first slide."
    import subprocess
    mods = "pathnb.wsi.runs" + (", torch, timm, pathnb.wsi.features, pathnb.wsi.encoders" if encoder else "")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {mods}"], check=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, default=6, help="number of synthetic slides")
    ap.add_argument("--size", type=int, default=4000, help="level-0 width of each slide in px (height: 3/4 of it)")
    ap.add_argument("--jobs", type=int, default=2, help="jobs of the parallel run")
    ap.add_argument("--encoder", default=None, help="also embed, e.g. test-vit (random weights from seed 0)")
    ap.add_argument("--label", default=datetime.date.today().isoformat())
    a = ap.parse_args()
    import numpy as np
    from pathnb.wsi.containers import read_adata, feature_key
    man = _slides(a.slides, a.size)
    kw = {}
    if a.encoder:
        from pathnb.wsi.runs import SlideEmbedder
        emb = SlideEmbedder(a.encoder, random_weights=True, num_workers=0, device="cpu")
        kw = dict(embed=emb, encoder=emb.name)
        import torch
        torch.set_num_threads(1)   # the same arithmetic as a job with one thread: features comparable bit for bit
    load0 = os.getloadavg()
    out1, outj = CACHE/"out_jobs1", CACHE/f"out_jobs{a.jobs}"
    t1, s1 = _run(man, out1, 1, kw)
    tj, sj = _run(man, outj, a.jobs, dict(kw, threads=1) if a.encoder else kw)
    start_s = _startup(a.encoder)
    load1 = os.getloadavg()
    same = s1[["slide_id", "status", "n_tiles"]].equals(sj[["slide_id", "status", "n_tiles"]])
    feats_same = None
    if a.encoder:
        key = feature_key(kw["encoder"])
        feats_same = all(np.array_equal(read_adata(out1/f"{sid}.h5ad").obsm[key],
                                        read_adata(outj/f"{sid}.h5ad").obsm[key])
                         for sid in s1.slide_id[s1.status == "done"])
    n = len(s1)
    # steady state: a slide's own seconds (process_slide's clock) after each process's first slide, which also pays
    # for building the encoder; with J processes J slides run at once
    med1, medj = float(s1.seconds[1:].median()), float(sj.seconds[a.jobs:].median())
    res = dict(label=a.label, slides=n, size_px=[a.size, a.size * 3 // 4], jobs=a.jobs, encoder=a.encoder,
               tiles=int(s1.n_tiles.sum()), seconds_1=round(t1, 2), seconds_j=round(tj, 2),
               slides_per_s_1=round(n / t1, 3), slides_per_s_j=round(n / tj, 3), ratio=round(t1 / tj, 2),
               steady_slides_per_s_1=round(1 / med1, 3), steady_slides_per_s_j=round(a.jobs / medj, 3),
               process_start_s=round(start_s, 2), same_summary=bool(same), same_features=feats_same,
               cpu_count=os.cpu_count(),
               loadavg_before=[round(x, 2) for x in load0], loadavg_after=[round(x, 2) for x in load1],
               python=platform.python_version(), host=platform.node())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS/f"jobs_{a.label}.json").write_text(json.dumps(res, indent=1))
    print(f"{n} slides of {a.size}×{a.size * 3 // 4} px, {res['tiles']} tiles"
          + (f", embedded with {a.encoder}" if a.encoder else ", tiling only"))
    print(f"jobs=1: {t1:.1f} s, {n / t1:.3f} slides/s")
    print(f"jobs={a.jobs}: {tj:.1f} s, {n / tj:.3f} slides/s")
    print(f"starting one job process (its imports): {start_s:.1f} s")
    print(f"steady state (median slide after each process's first): jobs=1 {1 / med1:.3f} slides/s, "
          f"jobs={a.jobs} {a.jobs / medj:.3f} slides/s, ratio {a.jobs * med1 / medj:.2f}×")
    print(f"ratio {t1 / tj:.2f}×; same summary: {same}"
          + ("" if feats_same is None else f"; same features: {feats_same}"))
    print(f"CPU cores {os.cpu_count()}; load average (1/5/15 min) before {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, "
          f"after {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f}")
    if not same or feats_same is False:
        sys.exit("the runs differ")


if __name__ == "__main__":
    main()
