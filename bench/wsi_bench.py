"""WSI pipeline benchmarks: tiling throughput against the OpenSlide limit (with LazySlide and histolab beside
pathnb), peak memory, and the synthetic renderer.

    python bench/wsi_bench.py tiling [--rounds 5] [--threads 1 2] [--histolab-python /work/venv-histolab/bin/python]
    python bench/wsi_bench.py memory [--sizes 20000 40000] [--encoder vit_tiny]   # peak RSS, tiling + embedding
    python bench/wsi_bench.py render       # synthetic renderer: exact fields vs texture mode, µs per pixel

`tiling` runs the pipeline "tissue + grid + read every kept tile" on a 20,000 × 15,000 JPEG pyramid written by
`pathnb synth` and on CMU-1 (the small region when only that is in the shared data). The limit is OpenSlide
reading exactly the kept tiles with `np.asarray(read_region(...))` (RGBA, no conversion) with the same number of
threads sharing one handle. Every tool is measured against the limit on its own kept tiles at equal threads, as
paired per-round ratios (limit seconds / tool seconds) from interleaved rounds; histolab runs in its own
environment (its own OpenSlide) as a separate process, one round per call, against that environment's limit.
histolab 0.7 pins openslide-python 1.3.1, which looks for libopenslide.so.0: that environment links it to its own
openslide-bin copy (`mkdir $VENV/oslib; ln -s $VENV/lib/python3.10/site-packages/openslide_bin/libopenslide.so.1
$VENV/oslib/libopenslide.so.0`) and the child runs with LD_LIBRARY_PATH=$VENV/oslib.
Slides are cached in bench/_cache/.
"""
import argparse, json, os, subprocess, sys, time, resource
from pathlib import Path
import numpy as np

CACHE = Path(__file__).resolve().parent/"_cache"

def synth_slide(size, mpp, square=False):
    from pathnb.wsi.synth import write_synth_slide
    p = CACHE/f"synth_{size}{'sq' if square else ''}_{mpp}.tiff"
    if not p.exists():
        CACHE.mkdir(exist_ok=True)
        t = time.time()
        write_synth_slide(p, size, size if square else int(size * 0.75), mpp=mpp, seed=0, fast=True, n_fragments=4)
        print(f"wrote {p.name} ({p.stat().st_size/1e6:.0f} MB) in {time.time()-t:.0f}s", flush=True)
    return p


# ---------------------------------------------------------------- tiling against the OpenSlide limit
# The limit: OpenSlide reading exactly the kept tiles into numpy arrays with the least work
# (np.asarray(read_region(...)): RGBA, no conversion), with the same number of threads sharing one handle.
# Every tool is compared with the limit on its OWN kept tiles at the SAME thread count, in paired,
# interleaved rounds (round r: tool, then its limit), so that load from other processes hits both alike.

def limit_read(path, xy, tile_px, threads):
    "Seconds for OpenSlide to read the tiles at level-0 `xy` (one handle shared by `threads` threads)."
    import openslide
    from concurrent.futures import ThreadPoolExecutor
    t = time.perf_counter()
    o = openslide.OpenSlide(str(path))
    size = (int(tile_px), int(tile_px))

    def work(k):   # thread k reads every threads-th tile: no task per tile (that costs ~5 % at 2 threads)
        for x, y in xy[k::threads]:
            np.asarray(o.read_region((int(x), int(y)), 0, size))

    if threads <= 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, range(threads)))
    o.close()
    return time.perf_counter() - t

def pathnb_pipeline(path, threads, tile_px=224, min_tissue=0.5):
    "(total s, tissue+grid s, kept level-0 xy): open, detect tissue, grid, read every kept tile with `threads`."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    t = time.perf_counter()
    with open_slide(path) as s:
        tm = detect_tissue(s, num_workers=threads)
        tl = tile_slide(s, tile_mpp=0.5, tile_px=tile_px, min_tissue=min_tissue, tissue=tm)
        tg = time.perf_counter() - t
        for i, im in iter_tiles(s, tl, num_workers=threads):
            pass
    return time.perf_counter() - t, tg, np.asarray(tl.xy)

def lazyslide_pipeline(path, threads, tile_px=224, min_tissue=0.5):
    """(total s, tissue+grid s, kept level-0 xy) for LazySlide: open_wsi (OpenSlide reader), find_tissues,
    tile_tissues at 0.5 µm/px, then its tile dataset through a torch DataLoader (1 thread: in this process;
    more: that many worker processes, each with its own handle)."""
    import lazyslide as zs
    import torch
    from wsidata import open_wsi
    t = time.perf_counter()
    wsi = open_wsi(str(path), store=None, reader="openslide")
    zs.pp.find_tissues(wsi)
    zs.pp.tile_tissues(wsi, tile_px, mpp=0.5, background_fraction=1 - min_tissue)
    tg = time.perf_counter() - t
    ds = wsi.ds.tile_images()
    dl = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=0 if threads <= 1 else threads)
    n = 0
    for b in dl:
        n += len(b["image"])
    dt = time.perf_counter() - t
    reqs = ds._tile_requests
    assert n == len(reqs) and all(r.level == 0 and r.width == tile_px for r in reqs), "LazySlide read other tiles"
    if hasattr(wsi, "close"):
        wsi.close()
    return dt, tg, np.array([(r.x, r.y) for r in reqs])

def _round_child(tool, path, threads, tile_px, min_tissue):
    "Runs in a fresh process: one untimed warm-up (imports, page cache), then the tool and its limit, back to back."
    pipe = {"pathnb": pathnb_pipeline, "lazyslide": lazyslide_pipeline}[tool]
    pipe(path, threads, tile_px, min_tissue)
    tt, tg, xy = pipe(path, threads, tile_px, min_tissue)
    lim = limit_read(path, xy, tile_px, threads)
    print(json.dumps(dict(tool_s=tt, tissue_grid_s=tg, limit_s=lim, n=len(xy))))

def _histolab_child(path, tile_px, min_tissue):
    "Runs under the histolab environment: one round of histolab's pipeline and its own OpenSlide limit (1 thread)."
    import tempfile
    import openslide
    import histolab
    from histolab.slide import Slide as HSlide
    from histolab.tiler import GridTiler
    from histolab.masks import TissueMask
    t = time.perf_counter()
    hs = HSlide(str(path), processed_path=tempfile.mkdtemp())
    tiler = GridTiler(tile_size=(tile_px, tile_px), level=0, check_tissue=True, tissue_percent=100 * min_tissue)
    xy = []
    for tile, c in tiler._tiles_generator(hs, TissueMask()):   # what GridTiler.extract runs before saving PNGs
        np.asarray(tile.image)
        xy.append((c.x_ul, c.y_ul))
    dt = time.perf_counter() - t
    lim = limit_read(path, xy, tile_px, 1)
    print(json.dumps(dict(histolab_s=dt, limit_s=lim, n=len(xy), histolab=histolab.__version__,
                          openslide_python=openslide.__version__, openslide=openslide.__library_version__)))

def _versions():
    import openslide
    out = dict(openslide_python=openslide.__version__, openslide=openslide.__library_version__)
    try:
        import lazyslide, wsidata
        out.update(lazyslide=lazyslide.__version__, wsidata=wsidata.__version__)
    except ImportError:
        pass
    import pathnb
    out["pathnb"] = pathnb.__version__
    root = Path(pathnb.__file__).parent.parent
    git = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True).stdout.strip()
    out["pathnb_commit"] = git("rev-parse", "--short", "HEAD")
    out["pathnb_wsi_uncommitted"] = bool(git("status", "--porcelain", "pathnb/wsi"))
    return out

def _q(v):
    "median, 25th and 75th percentile."
    return [float(np.median(v)), float(np.percentile(v, 25)), float(np.percentile(v, 75))]

def bench_tiling(slides, threads, rounds=5, tools=("pathnb", "lazyslide", "histolab"), histolab_python=None,
                 tile_px=224, min_tissue=0.5):
    """Paired rounds on each slide: every tool at every thread count, each in a fresh process and followed there by
    OpenSlide reading that tool's kept tiles with the same number of threads (the limit); the order alternates."""
    rows, meta = [], {}
    for name, path in slides.items():
        own = [t for t in tools if t in ("pathnb", "lazyslide")]
        for r in range(rounds):
            order = [(tool, th) for tool in own for th in threads]
            for tool, th in (order if r % 2 == 0 else order[::-1]):   # alternate the order between rounds
                # each measurement in a fresh process of this environment: no tool runs in a heap or with
                # threads another tool left behind (after LazySlide, pathnb measured ~1.5 % lower in one process)
                cmd = [sys.executable, __file__, "_round", tool, str(path), str(th), str(tile_px), str(min_tissue)]
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    raise SystemExit(f"{tool} child failed:\n{p.stderr[-3000:]}")
                m = json.loads(p.stdout.strip().splitlines()[-1])
                tt, tg, lim = m["tool_s"], m["tissue_grid_s"], m["limit_s"]
                rows.append(dict(slide=name, tool=tool, threads=th, round=r, n_tiles=m["n"], tool_s=tt,
                                 tissue_grid_s=tg, limit_s=lim, ratio=lim / tt, read_ratio=lim / (tt - tg)))
            if "histolab" in tools and histolab_python:
                cmd = [histolab_python, __file__, "_histolab", str(path), str(tile_px), str(min_tissue)]
                lib = Path(histolab_python).parent.parent/"oslib"   # libopenslide.so.0 → that venv's openslide-bin
                env = dict(os.environ, LD_LIBRARY_PATH=str(lib)) if lib.exists() else None
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if p.returncode:
                    raise SystemExit(f"histolab child failed:\n{p.stderr[-3000:]}")
                h = json.loads(p.stdout.strip().splitlines()[-1])
                meta["histolab_env"] = {k: h[k] for k in ("histolab", "openslide_python", "openslide")}
                rows.append(dict(slide=name, tool="histolab", threads=1, round=r, n_tiles=h["n"],
                                 tool_s=h["histolab_s"],
                                 tissue_grid_s=float("nan"), limit_s=h["limit_s"], ratio=h["limit_s"] / h["histolab_s"],
                                 read_ratio=float("nan")))
            print(f"{name} round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    return rows, meta

def summarise(rows):
    "One line per slide × tool × threads: tiles, medians, per-round ratio median [IQR]."
    import pandas as pd
    df = pd.DataFrame(rows)
    out = []
    for (slide, tool, th), g in df.groupby(["slide", "tool", "threads"], sort=False):
        n = int(g.n_tiles.iloc[0])
        out.append(dict(slide=slide, tool=tool, threads=int(th), n_tiles=n, rounds=len(g),
                        tool_s=float(g.tool_s.median()), limit_s=float(g.limit_s.median()),
                        tiles_per_s=n / float(g.tool_s.median()), limit_tiles_per_s=n / float(g.limit_s.median()),
                        ratio=_q(g.ratio), read_ratio=_q(g.read_ratio) if g.read_ratio.notna().all() else None))
    slides, order = list(dict.fromkeys(df.slide)), ["pathnb", "lazyslide", "histolab"]
    return sorted(out, key=lambda r: (slides.index(r["slide"]), order.index(r["tool"]) if r["tool"] in order else 9,
                                      r["threads"]))

def markdown_table(summary, meta):
    "The equal-thread table as markdown."
    lines = ["| slide | tool | threads | kept tiles | tiles/s | limit tiles/s (same tiles, same threads) "
             "| ratio to the limit, median [IQR] | reading alone / limit |", "|---|---|--:|--:|--:|--:|--:|--:|"]
    for s in summary:
        q, rr = s["ratio"], s["read_ratio"]
        rtxt = f"{rr[0]:.2f} [{rr[1]:.2f}, {rr[2]:.2f}]" if rr else "–"
        lines.append(f"| {s['slide']} | {s['tool']} | {s['threads']} | {s['n_tiles']:,} | {s['tiles_per_s']:.0f} "
                     f"| {s['limit_tiles_per_s']:.0f} | {q[0]:.2f} [{q[1]:.2f}, {q[2]:.2f}] | {rtxt} |")
    return "\n".join(lines) + "\n"

def pathnb_synth_slide(width=20000, height=15000):
    "The benchmark pyramid, written once with the `pathnb synth` command (JPEG, 0.5 µm/px, seed 0)."
    p = CACHE/f"pathnb_synth_{width}x{height}.tiff"
    if not p.exists():
        CACHE.mkdir(exist_ok=True)
        exe = Path(sys.executable).parent/"pathnb"
        subprocess.run([str(exe), "synth", "--width", str(width), "--height", str(height), str(p)], check=True)
    return p

def bench_render(region=1024, repeats=3):
    "Seconds to render a region of a synthetic slide at 0.5 µm/px, exact vs texture mode (best of `repeats`)."
    from pathnb.wsi.synth import SynthTissue
    st = SynthTissue(20000, 20000, mpp=0.5, seed=1)
    for fast in (False, True):   # warm-up (the texture mode builds its cache)
        st.render(0, 0, 64, 64, mpp=0.5, fast=fast)
    out = {}
    for fast in (False, True):
        ts = []
        for k in range(repeats):
            t = time.perf_counter()
            st.render(3000 + region * k, 4000, region, region, mpp=0.5, fast=fast)
            ts.append(time.perf_counter() - t)
        out["fast_s" if fast else "exact_s"] = min(ts)
    return dict(region_px=region, **out, exact_us_per_px=out["exact_s"] / region**2 * 1e6,
                fast_us_per_px=out["fast_s"] / region**2 * 1e6, speedup=out["exact_s"] / out["fast_s"])

def _vmhwm_mb():
    "Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited from the parent)."
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def _memory_child(size, encoder, batch_size, tissue_workers=1):
    "Runs in a fresh process: tile (+ embed) one slide, report peak RSS."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide
    path = synth_slide(size, 0.5, square=True)
    rss0 = _vmhwm_mb()
    t = time.time()
    with open_slide(path) as s:
        tm = detect_tissue(s, num_workers=tissue_workers)
        tiles = tile_slide(s, tile_mpp=0.5, tile_px=224, min_tissue=0.5, tissue=tm)
        n = len(tiles)
        if encoder:
            from pathnb.wsi.encoders import load_encoder
            from pathnb.wsi.features import extract_features
            enc = load_encoder(encoder, pretrained=False)
            f = extract_features(s, tiles, enc, batch_size=batch_size, num_workers=0, device="cpu")
            assert f.shape[0] == n
        else:
            from pathnb.wsi.tiling import iter_tiles
            for i, im in iter_tiles(s, tiles):
                pass
    peak = _vmhwm_mb()
    print(json.dumps(dict(size=size, n_tiles=n, peak_rss_mb=round(peak), rss_after_imports_mb=round(rss0),
                          seconds=round(time.time() - t, 1))))

def bench_memory(sizes, encoder, batch_size, tissue_workers=1):
    out = []
    for size in sizes:
        synth_slide(size, 0.5, square=True)
        r = subprocess.run([sys.executable, __file__, "_memchild", str(size), encoder or "", str(batch_size),
                            str(tissue_workers)],
                           capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-3000:])
            raise SystemExit(1)
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(out[-1], flush=True)
    return out

def run_tiling(a):
    "The `tiling` command: both slides, all tools, results to bench/results/wsi_tiling_threads.{json,csv,md}."
    import platform
    import pandas as pd
    from pathnb.core import shared_data
    slides = {"synth 20000×15000": pathnb_synth_slide()}
    cmu = shared_data("slides/CMU-1.svs") or shared_data("slides/CMU-1-Small-Region.svs")
    if cmu is None:
        print("skipped CMU-1: not in the shared data")
    else:
        slides[Path(cmu).stem] = cmu
    threads = a.threads or sorted({1, 2, os.cpu_count() or 1})
    hp = a.histolab_python if Path(a.histolab_python).exists() else None
    if hp is None:
        print(f"skipped histolab: {a.histolab_python} not found")
    t0, up0 = time.time(), os.getloadavg()
    rows, meta = bench_tiling(slides, threads, a.rounds, a.tools, hp)
    for f in a.merge:   # rows of another invocation (e.g. histolab's long rounds), kept with their own paired ratios
        m = json.loads(Path(f).read_text())
        rows += [dict(r, run=f) for r in m["rounds_raw"]]
        for k, v in m["versions"].items():
            if k != "main_env":
                meta[k] = v
        if m["versions"]["main_env"].get("lazyslide"):   # LazySlide's rows came from that run's environment
            meta["lazyslide_merged"] = m["versions"]["main_env"]["lazyslide"]
        meta.setdefault("merged", []).append(dict(file=f, command=m["command"], load_avg_start=m["load_avg_start"],
                                                  load_avg_end=m["load_avg_end"], minutes=m["minutes"]))
    summary = summarise(rows)
    res = dict(command="python bench/wsi_bench.py " + " ".join(sys.argv[1:]), threads=threads, rounds=a.rounds,
               machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
               load_avg_start=[round(v, 2) for v in up0], load_avg_end=[round(v, 2) for v in os.getloadavg()],
               minutes=round((time.time() - t0) / 60, 1), versions=dict(main_env=_versions(), **meta),
               slides={k: str(v) for k, v in slides.items()}, summary=summary, rounds_raw=rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(res, indent=1) + "\n")
    pd.DataFrame(rows).to_csv(f"{out}.csv", index=False)
    md = markdown_table(summary, meta)
    v = res["versions"]
    me = v["main_env"]
    md += (f"\nOpenSlide {me['openslide']} (openslide-python {me['openslide_python']}) for pathnb "
           f"and LazySlide {me.get('lazyslide') or meta.get('lazyslide_merged', '–')}")
    if "histolab_env" in v:
        h = v["histolab_env"]
        md += f"; OpenSlide {h['openslide']} (openslide-python {h['openslide_python']}) for histolab {h['histolab']}"
    md += (f". {a.rounds} paired rounds, {res['machine']}, load average {res['load_avg_start'][0]:.1f} → "
           f"{res['load_avg_end'][0]:.1f}. Command: `{res['command']}`\n")
    for m in meta.get("merged", []):
        md += (f"Rows from {m['file']}: `{m['command']}` ({m['minutes']} min, load average "
               f"{m['load_avg_start'][0]:.1f} → {m['load_avg_end'][0]:.1f}).\n")
    Path(f"{out}.md").write_text(md)
    print(md)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_memchild":
        _memory_child(int(sys.argv[2]), sys.argv[3] or None, int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "_round":
        _round_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "_histolab":
        _histolab_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tiling", "memory", "render"])
    ap.add_argument("--rounds", type=int, default=5, help="paired, interleaved rounds (tiling)")
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default: 1, 2 and the CPUs)")
    ap.add_argument("--tools", nargs="+", default=["pathnb", "lazyslide", "histolab"])
    ap.add_argument("--histolab-python", default="/work/venv-histolab/bin/python",
                    help="python of an environment with histolab 0.7 and its own OpenSlide")
    ap.add_argument("--out", default="bench/results/wsi_tiling_threads",
                    help="tiling: results as OUT.json, OUT.csv, OUT.md")
    ap.add_argument("--merge", nargs="*", default=[],
                    help="tiling: add the rounds of earlier result JSONs to the table")
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 40000])
    ap.add_argument("--encoder", default="")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--tissue-workers", type=int, default=1,
                    help="memory: threads of detect_tissue (1: what embed_slide and process_slide use)")
    ap.add_argument("--json", default=None, help="memory/render: also write the results to this JSON file")
    a = ap.parse_args()
    os.environ.setdefault("PATHNB_PROGRESS", "0")
    if a.what == "tiling":
        run_tiling(a)
        sys.exit(0)
    cmd = " ".join(["python bench/wsi_bench.py"] + sys.argv[1:])
    if a.what == "render":
        res = dict(command=cmd, **bench_render())
    else:
        runs = bench_memory(a.sizes, a.encoder, a.batch_size, a.tissue_workers)
        res = dict(command=cmd, encoder=a.encoder or None, runs=runs)
    print(json.dumps(res, indent=1))
    if a.json:
        import platform
        res["machine"] = f"{os.cpu_count()} CPUs, {platform.machine()}"
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
