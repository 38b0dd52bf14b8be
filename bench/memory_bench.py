"""Whole-process peak memory of `import pathnb` and `pathnb tile`, each measured in a fresh Python process.

Peak = `resource.getrusage(RUSAGE_SELF).ru_maxrss` read by the child at its end (the whole process's
high-water mark of resident memory). Linux carries the spawning process's high-water mark into ru_maxrss across
exec, so this script keeps itself small (pathnb is only imported in children) and also records the child's own
`VmHWM` from /proc/self/status as a cross-check. Slides: the single-level CMU-1-Small-Region.svs (2220 × 2967 px, JPEG
tiles; skipped when the shared data is absent) and synthetic JPEG pyramids of 20k² and 40k² px written once by
`pathnb.wsi.synth.write_synth_slide(fast=True)` into bench/_cache/ (git-ignored). The peak should not grow with
the slide's size, and `pathnb tile` must not import torch.

    python bench/memory_bench.py [--label after] [--sizes 20000 40000] [--repeats 1]

Writes bench/results/memory/memory_<label>.json and .md and prints the table.
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, subprocess, sys, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT/"bench"/"_cache"
RESULTS = ROOT/"bench"/"results"/"memory"

# Run in the child: report peak RSS, wall time and whether torch was imported (and by which pathnb line).
_CHILD_HEAD = textwrap.dedent("""
    import sys, time, json, resource, traceback, importlib.abc
    _who = []
    class _TorchWatch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" and not _who:
                _who.extend(f"{f.filename}:{f.lineno} {f.line}" for f in traceback.extract_stack()
                            if "pathnb" in f.filename and "memory_bench" not in f.filename)
            return None
    sys.meta_path.insert(0, _TorchWatch())
    _t0 = time.perf_counter()
""")
_CHILD_TAIL = textwrap.dedent("""
    _wall = time.perf_counter() - _t0
    _mods = sorted({m.split(".")[0] for m in sys.modules})
    _hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
    print("MEMBENCH " + json.dumps(dict(peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                         vmhwm_mib=int(_hwm[0].split()[1]) / 1024 if _hwm else None,
                                         wall_s=_wall, torch="torch" in sys.modules, torch_from=_who[-3:],
                                         top_modules=_mods, modules=sorted(sys.modules))))
""")

PKG_ROOT = ROOT  # folder the child imports pathnb from (--pkg-root: e.g. a copy of an older version)

def _child(body:str, # Python code to measure
           )->dict: # peak_mib, wall_s, torch, torch_from, top_modules
    "Run `body` in a fresh interpreter and return what it reports."
    code = _CHILD_HEAD + textwrap.dedent(body) + _CHILD_TAIL
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PKG_ROOT)
    line = [l for l in p.stdout.splitlines() if l.startswith("MEMBENCH ")]
    if p.returncode or not line:
        raise RuntimeError(f"child failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(line[-1][len("MEMBENCH "):])

def _tile_body(slide:Path)->str:
    "Child code running `pathnb tile SLIDE` in-process through the console script's entry point."
    return f"""
    import tempfile
    from pathnb.app.cli import main
    _rc = main(["tile", {str(slide)!r}, "--out", tempfile.mkdtemp(prefix="membench_")])
    assert _rc == 0, _rc
    """

def _thumb_body(slide:Path)->str:
    "Child code: open a slide and build the 8 µm/px tissue thumbnail; also reports the RSS just before it."
    return f"""
    import resource
    from pathnb.wsi.slide import open_slide
    s = open_slide({str(slide)!r})
    _before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = s.thumbnail(mpp=8)
    print("BEFORE_THUMB", _before, t.shape)
    """

def _python(code:str)->str:
    "stdout of `code` run in a child interpreter importing this checkout (so that this process stays small)."
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    if p.returncode:
        raise RuntimeError(p.stderr[-4000:])
    return p.stdout

def _synth(size:int)->Path:
    "A cached synthetic JPEG pyramid of size² px (written once, by a child; texture mode keeps that quick)."
    path = CACHE/f"synth_{size // 1000}k.tiff"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} (once) …", flush=True)
        _python(f"from pathnb.wsi.synth import write_synth_slide; "
                f"write_synth_slide({str(path)!r}, {size}, {size}, fast=True)")
    return path

def _info()->dict:
    "Where CMU-1 is (or None) and the versions of Python and of the libraries that hold pixels, from a child."
    code = textwrap.dedent("""
        import json, platform, numpy, PIL, tifffile, openslide, pathnb
        from pathnb.core import shared_data
        cmu = shared_data("slides/CMU-1-Small-Region.svs")
        print(json.dumps(dict(cmu=str(cmu) if cmu else None, versions=dict(
            python=platform.python_version(), pathnb=pathnb.__version__, numpy=numpy.__version__,
            pillow=PIL.__version__, tifffile=tifffile.__version__, openslide=openslide.__library_version__,
            openslide_python=openslide.__version__))))
    """)
    info = json.loads(_python(code).strip().splitlines()[-1])
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "pathnb/wsi/slide.py"], capture_output=True, text=True,
                           cwd=ROOT).stdout.strip()
    info["versions"].update(git=git + (" (+ uncommitted slide.py)" if dirty else ""),
                            machine=f"{platform.machine()} {os.cpu_count()} CPUs",
                            pathnb_from=str(PKG_ROOT) if PKG_ROOT != ROOT else "this checkout")
    return info

def _markdown(res:dict)->str:
    "A short markdown table of the results."
    lines = [f"# Peak memory ({res['label']}, {res['date']})", "",
             f"Command: `{res['command']}`  ",
             f"Versions: {', '.join(f'{k} {v}' for k, v in res['versions'].items())}", "",
             "| measurement | slide | peak RSS, ru_maxrss (MiB) | VmHWM (MiB) | wall (s) | torch imported |",
             "|---|---|---:|---:|---:|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['name']} | {r['slide']} | {r['peak_mib']:.1f} | {r['vmhwm_mib']:.1f} | {r['wall_s']:.1f} "
                     f"| {r['torch']} |")
    lines += ["", "Ratios: " + ", ".join(f"{k} = {v:.3f}" for k, v in res["ratios"].items())]
    if res.get("imports"):
        lines += ["", "Import cost of the libraries `pathnb tile` loads (each alone, peak RSS minus a bare "
                  "interpreter's, MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in res["imports"].items())]
    return "\n".join(lines) + "\n"

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after", help="name of this run (results file suffix)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[20000, 40000], help="synthetic pyramid edges, px")
    ap.add_argument("--repeats", type=int, default=1, help="measurements per row (the max peak is kept)")
    ap.add_argument("--no-imports", action="store_true", help="skip the per-library import breakdown")
    ap.add_argument("--pkg-root", default=None, help="import pathnb from this folder instead (e.g. an older copy)")
    a = ap.parse_args(argv)
    global PKG_ROOT
    if a.pkg_root:
        PKG_ROOT = Path(a.pkg_root).resolve()
    info = _info()
    cmu = info["cmu"]
    slides = ([("CMU-1-Small-Region.svs (1 level, 6.6 Mpx)", Path(cmu))] if cmu else [])
    if not cmu:
        print("CMU-1 skipped: the shared data folder is absent")
    slides += [(f"synthetic {s // 1000}k² pyramid ({s * s / 1e6:.0f} Mpx)", _synth(s)) for s in a.sizes]
    jobs = [("python", "-", "pass"), ("import pathnb", "-", "import pathnb"),
            ("import pathnb.wsi.runs (what tile loads)", "-",
             "import pathnb.wsi.runs, pathnb.wsi.tissue, pathnb.wsi.tiling")]
    for name, path in slides:
        jobs.append(("open + thumbnail(mpp=8)", name, _thumb_body(path)))
        jobs.append(("pathnb tile", name, _tile_body(path)))
    rows, tile_modules = [], []
    for name, slide, body in jobs:
        got = [_child(body) for _ in range(a.repeats)]
        r = max(got, key=lambda g: g["peak_mib"])
        rows.append(dict(name=name, slide=slide, peak_mib=round(r["peak_mib"], 1), vmhwm_mib=round(r["vmhwm_mib"], 1),
                         wall_s=round(r["wall_s"], 2),
                         torch=r["torch"], torch_from=r["torch_from"], peaks=[round(g["peak_mib"], 1) for g in got]))
        if name == "pathnb tile" and not tile_modules:
            tile_modules = r["top_modules"]
            body = ("import importlib\nfor _m in %r:\n    try:\n        importlib.import_module(_m)\n"
                    "    except Exception:\n        pass\n" % [m for m in r["modules"] if not m.startswith("__")])
            got = _child(body)
            rows.append(dict(name="imports only: every module pathnb tile loads", slide="-",
                             peak_mib=round(got["peak_mib"], 1), vmhwm_mib=round(got["vmhwm_mib"], 1),
                             wall_s=round(got["wall_s"], 2), torch=got["torch"], torch_from=got["torch_from"],
                             peaks=[round(got["peak_mib"], 1)]))
            print(f"{rows[-1]['name']:38s} {'-':42s} {got['peak_mib']:7.1f} MiB (VmHWM {got['vmhwm_mib']:7.1f})",
                  flush=True)
        print(f"{name:38s} {slide:42s} {r['peak_mib']:7.1f} MiB (VmHWM {r['vmhwm_mib']:7.1f}) {r['wall_s']:6.1f} s "
              f"torch={r['torch']}", flush=True)
        if r["torch"]:
            print("  torch imported from:\n    " + "\n    ".join(r["torch_from"]))
    peak = {(r["name"], r["slide"]): r["peak_mib"] for r in rows}
    tiles = [r for r in rows if r["name"] == "pathnb tile"]
    ratios = {}
    if len(tiles) > 1:
        for r in tiles[1:]:
            ratios[f"tile peak {r['slide'].split(' (')[0]} / {tiles[0]['slide'].split(' (')[0]}"] = (
                r["peak_mib"] / tiles[0]["peak_mib"])
    base = peak.get(("imports only: every module pathnb tile loads", "-"),
                    peak[("import pathnb.wsi.runs (what tile loads)", "-")])
    for r in tiles:
        ratios[f"tile peak − imports only, {r['slide'].split(' (')[0]} (MiB)"] = r["peak_mib"] - base
    imports = {}
    if not a.no_imports and tiles:
        bare = peak[("python", "-")]
        heavy = [m for m in ("numpy", "PIL", "scipy", "skimage", "cv2", "openslide", "tifffile", "zarr", "imagecodecs",
                             "anndata", "pandas", "h5py", "matplotlib", "shapely", "fastcore", "torch")
                 if m in tile_modules or m == "torch"]
        for m in heavy:
            imports[m] = round(_child(f"import {m}")["peak_mib"] - bare, 1)
    res = dict(label=a.label, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               command="python bench/memory_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               method="peak = ru_maxrss (RUSAGE_SELF) of a fresh python process per row; tile runs "
                      "`pathnb.app.cli.main(['tile', SLIDE, '--out', TMP])` in that process",
               versions=info["versions"], rows=rows, ratios={k: round(v, 3) for k, v in ratios.items()},
               imports=imports)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS/f"memory_{a.label}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = _markdown(res)
    (RESULTS/f"memory_{a.label}.md").write_text(md)
    print("\n" + md)

if __name__ == "__main__":
    main()
