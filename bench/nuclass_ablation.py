"""NuClass ablation: does the gate help when the two paths fail on different cells?

Runs `bench/nuclass_benchmark.py` for Path global as NuClass builds it (context field + Path local's
feature vector, `context+local`) and for the ablation where Path global sees the context field only
(`context`), on three cohorts (training seed 0/1/2 with sections from 1000/2000/3000), plus seed 0 with
5 % tumour budding (isolated tumour cells in stroma, which only the nucleus reveals). Then writes
`summary.csv` (macro-F1 of each path, the gate and the oracle; gain = gate − best path; headroom =
oracle − best path; ECE of the gate before/after temperature scaling).

`--study gamma` instead runs NuClass's own design (context+local) with the uncertainty exponent γ of
Path global's loss, `(1 − p_local(y))^γ`, at 0, 4 and 8 on the same three cohorts (γ = 2 is the
default and is in the ablation): a larger γ makes Path global concentrate on the cells Path local gets
wrong, which could make the two paths more complementary and give the gate something to do.

Usage: python bench/nuclass_ablation.py [--study ablation|gamma] [--out bench/results/nuclass_<study>] [--jobs 2]
       [--summarize-only]
(about 2 minutes per run on one core; 8 runs for the ablation, 9 for gamma)
"""
import argparse, json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pandas as pd

RUNS = {  # name → extra arguments of nuclass_benchmark.py
    "seed0_context+local": [], "seed0_context": ["--global-input", "context"],
    "seed1_context+local": ["--seed", "1", "--first-section", "2000"],
    "seed1_context": ["--global-input", "context", "--seed", "1", "--first-section", "2000"],
    "seed2_context+local": ["--seed", "2", "--first-section", "3000"],
    "seed2_context": ["--global-input", "context", "--seed", "2", "--first-section", "3000"],
    "seed0_context+local_budding5": ["--budding", "0.05"],
    "seed0_context_budding5": ["--global-input", "context", "--budding", "0.05"],
}

_SEEDS = {0: [], 1: ["--seed", "1", "--first-section", "2000"], 2: ["--seed", "2", "--first-section", "3000"]}
GAMMA_RUNS = {f"seed{k}_context+local_gamma{g}": ["--gamma", str(g), *v] for k, v in _SEEDS.items() for g in (0, 4, 8)}
STUDIES = dict(ablation=RUNS, gamma=GAMMA_RUNS)

def run(out:Path, name:str, args:list)->str:
    "One benchmark run in its own process (one thread); returns the name when it succeeded."
    log = out/f"{name}.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") as f:
        rc = subprocess.run([sys.executable, str(Path(__file__).with_name("nuclass_benchmark.py")), "--out",
                             str(out/name), *args], stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc:
        print(f"{name} failed (exit {rc}); see {log}", file=sys.stderr)
    else:
        for png in (out/name).glob("*.png"):
            png.unlink()   # the figures are the main benchmark's; keep the numbers
        log.unlink()
    return name if rc == 0 else None

def summarize(out:Path, runs:dict=RUNS)->pd.DataFrame:
    rows = []
    for name in runs:
        p = out/name/"results.json"
        if not p.exists():
            continue
        r = json.loads(p.read_text())
        m = r["macro_f1"]
        best = max(m["local"], m["glob"])
        rows.append(dict(run=name, global_input="context" if "--global-input" in runs[name] else "context+local",
                         gamma=r["args"].get("gamma", 2.0), seed=r["args"]["seed"],
                         budding=r["args"].get("budding", 0.0), local=m["local"], glob=m["glob"], gate=m["gate"],
                         oracle=m["oracle"],
                         gain=m["gate"] - best, headroom=m["oracle"] - best, ece_gate=r["ece"]["gate"],
                         ece_calibrated=r["ece"]["gate_calibrated"], seconds=r["seconds"]))
    df = pd.DataFrame(rows).round(4)
    df.to_csv(out/"summary.csv", index=False)
    return df

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", choices=list(STUDIES), default="ablation")
    ap.add_argument("--out", default=None, help="default: bench/results/nuclass_<study>")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--summarize-only", action="store_true")
    a = ap.parse_args()
    runs = STUDIES[a.study]
    out = Path(a.out or f"bench/results/nuclass_{a.study}")
    out.mkdir(parents=True, exist_ok=True)
    if not a.summarize_only:
        with ThreadPoolExecutor(a.jobs) as ex:
            done = [n for n in ex.map(lambda kv: run(out, *kv), runs.items()) if n]
        if len(done) < len(runs):
            print(f"{len(runs) - len(done)} run(s) failed; the summary has the others", file=sys.stderr)
    df = summarize(out, runs)
    print(df.to_string(index=False))
    print(df[df.budding == 0].groupby(["global_input", "gamma"])
          [["local", "glob", "gate", "oracle", "gain", "headroom"]].agg(["mean", "std"]).round(3).T.to_string())
