"""The whole tiling pipeline against the equal-thread OpenSlide decode limit, as paired interleaved ratios.

    python bench/wsi_limit.py [--slide PATH] [--threads 1 2] [--rounds 5] [--variants pipeline ...]

The slide defaults to a 20,000 × 15,000 JPEG pyramid at 0.5 µm/px written once by `pathnb synth` into
bench/_cache/. The limit is OpenSlide reading exactly the kept 224-px tiles with
`np.asarray(slide.read_region(...))` (RGBA, no conversion), `t` threads sharing one handle. A variant is timed
from opening the slide to the last tile (tissue + grid + every kept tile read). Each round times the limit and
every variant once, in an order that alternates between rounds; the ratio of a round is limit seconds /
variant seconds (1.0: as fast as the limit), so load from other processes hits both sides of a ratio alike.
"""
import argparse, os, statistics, subprocess, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np

CACHE = Path(__file__).resolve().parent/"_cache"
TILE_PX = 224


def default_slide(width=20000, height=15000):
    "The benchmark pyramid, written by `pathnb synth` the first time."
    p = CACHE/f"limit_{width}x{height}.tiff"
    if not p.exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(["pathnb", "synth", str(p), "--width", str(width), "--height", str(height)], check=True)
    return p


def kept_tiles(path):
    "Level-0 corners of the tiles the pipeline keeps (the limit reads exactly these)."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tiling import tile_slide
    with open_slide(path) as s:
        return tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX).xy


def limit(path, xy, threads):
    "OpenSlide reads of exactly the kept tiles, RGBA, no conversion; `threads` threads share one handle."
    import openslide
    t = time.perf_counter()
    o = openslide.OpenSlide(str(path))
    def work(k):
        for x, y in xy[k::threads]:
            np.asarray(o.read_region((int(x), int(y)), 0, (TILE_PX, TILE_PX)))
    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, range(threads)))
    o.close()
    return time.perf_counter() - t


def pipeline(path, n, threads):
    "pathnb: open, detect tissue, grid, read every kept tile with `iter_tiles`; `threads` threads for both."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    t = time.perf_counter()
    with open_slide(path) as s:
        tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX, tissue_kw=dict(num_workers=threads))
        for _ in iter_tiles(s, tl, num_workers=threads):
            pass
    assert len(tl) == n, (len(tl), n)
    return time.perf_counter() - t


def pipeline_t16(path, n, threads):
    "Lever check: the pipeline with the tissue mask made at 16 µm/px (a pyramid level here) instead of 8."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    t = time.perf_counter()
    with open_slide(path) as s:
        tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX, tissue_kw=dict(mpp=16, num_workers=threads))
        for _ in iter_tiles(s, tl, num_workers=threads):
            pass
    return time.perf_counter() - t


def overlap(path, n, threads, stats=None):
    "Lever check: read likely tiles (a 32 µm/px mask without pen removal) on one thread while tissue is detected."
    import threading
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide
    t = time.perf_counter()
    with open_slide(path) as s:
        rough = detect_tissue(s, mpp=32, pen=False)
        guess = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX, tissue=rough, min_tissue=0.9)
        read_guess = guess.reader(s)
        stop = threading.Event()
        done = set()
        def ahead():
            for i, (x, y) in enumerate(guess.xy):
                if stop.is_set():
                    return
                read_guess(i)
                done.add((int(x), int(y)))
        th = threading.Thread(target=ahead)
        th.start()
        tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX)
        stop.set()
        th.join()
        todo = np.flatnonzero([(int(x), int(y)) not in done for x, y in tl.xy])
        read = tl.reader(s)
        if threads == 1:
            for i in todo:
                read(i)
        else:
            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(lambda k: [read(i) for i in todo[k::threads]], range(threads)))
    assert len(tl) == n, (len(tl), n)
    if stats is not None:
        kept = {(int(x), int(y)) for x, y in tl.xy}
        stats.update(ahead=len(done), wasted=len(done - kept), guess=len(guess))
    return time.perf_counter() - t


def tissue_grid(path, n, threads):
    "pathnb: open, detect tissue, grid (no tile reads): the serial part of the pipeline."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tiling import tile_slide
    t = time.perf_counter()
    with open_slide(path) as s:
        tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX, tissue_kw=dict(num_workers=threads))
    assert len(tl) == n
    return time.perf_counter() - t


def reads_only(path, n, threads):
    "pathnb: `iter_tiles` over a grid made before the clock starts (what the reader alone costs)."
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    with open_slide(path) as s:
        tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX)
    t = time.perf_counter()
    with open_slide(path) as s:
        for _ in iter_tiles(s, tl, num_workers=threads):
            pass
    return time.perf_counter() - t


def pil_rgb(path, xy, threads):
    "Lever check: OpenSlide reads + PIL convert('RGB') + np.asarray (the old per-tile path, without pathnb)."
    import openslide
    t = time.perf_counter()
    o = openslide.OpenSlide(str(path))
    def work(k):
        for x, y in xy[k::threads]:
            np.asarray(o.read_region((int(x), int(y)), 0, (TILE_PX, TILE_PX)).convert("RGB"))
    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, range(threads)))
    o.close()
    return time.perf_counter() - t


def lowlevel_rgb(path, xy, threads):
    "Lever check: openslide.lowlevel reads into a reused numpy buffer, BGRA → RGB view copy (no PIL)."
    import openslide
    from openslide import lowlevel as ll
    t = time.perf_counter()
    o = openslide.OpenSlide(str(path))
    def work(k):
        buf = np.empty((TILE_PX, TILE_PX), np.uint32)
        ptr = buf.ctypes.data_as(ll._read_region.argtypes[1])
        for x, y in xy[k::threads]:
            ll._read_region(o._osr, ptr, int(x), int(y), 0, TILE_PX, TILE_PX)
            np.ascontiguousarray(buf.view(np.uint8).reshape(TILE_PX, TILE_PX, 4)[..., 2::-1])
    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, range(threads)))
    o.close()
    return time.perf_counter() - t


def cpu_breakdown(path, xy, tissue_mpp=8.0):
    "Process CPU seconds (one thread) of the limit and of each pipeline step: less sensitive to other load."
    import openslide
    from pathnb.wsi.slide import open_slide
    from pathnb.wsi.tissue import detect_tissue
    from pathnb.wsi.tiling import tile_slide, iter_tiles
    c = time.process_time
    t = c()
    o = openslide.OpenSlide(str(path))
    for x, y in xy:
        np.asarray(o.read_region((int(x), int(y)), 0, (TILE_PX, TILE_PX)))
    o.close()
    out = dict(limit=c() - t)
    t = c()
    s = open_slide(path)
    out["open"] = c() - t
    t = c()
    tm = detect_tissue(s, mpp=tissue_mpp, num_workers=1)
    out["tissue"] = c() - t
    t = c()
    tl = tile_slide(s, tile_mpp=0.5, tile_px=TILE_PX, tissue=tm)
    out["grid"] = c() - t
    t = c()
    for _ in iter_tiles(s, tl, num_workers=1):
        pass
    out["reads"] = c() - t
    s.close()
    out["ratio"] = out["limit"] / (out["open"] + out["tissue"] + out["grid"] + out["reads"])
    return out


VARIANTS = dict(pipeline=pipeline, tissue_grid=tissue_grid, reads_only=reads_only, pipeline_t16=pipeline_t16,
                overlap=overlap)
LEVERS = dict(pil_rgb=pil_rgb, lowlevel_rgb=lowlevel_rgb)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slide", default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=0, help="first print this many one-thread CPU-time breakdowns")
    ap.add_argument("--variants", nargs="+", default=["pipeline"], choices=sorted(VARIANTS) + sorted(LEVERS))
    a = ap.parse_args()
    path = Path(a.slide) if a.slide else default_slide()
    xy = kept_tiles(path)
    n = len(xy)
    print(f"{path.name}: {n} kept tiles of {TILE_PX} px; load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for r in range(a.cpu):
        for tm in (8.0, 16.0):
            b = cpu_breakdown(path, xy, tm)
            print(f"cpu, tissue at {tm:g} µm/px: " + " ".join(f"{k} {v:.3f}" for k, v in b.items()), flush=True)
    for th in a.threads:
        ratios = {v: [] for v in a.variants}
        for r in range(a.rounds):
            names = ["limit"] + a.variants
            order = names if r % 2 == 0 else names[::-1]
            secs = {}
            for name in order:
                if name == "limit":
                    secs[name] = limit(path, xy, th)
                elif name in LEVERS:
                    secs[name] = LEVERS[name](path, xy, th)
                else:
                    secs[name] = VARIANTS[name](path, n, th)
            line = " ".join(f"{v}={secs['limit'] / secs[v]:.3f}" for v in a.variants)
            print(f"threads={th} round {r}: limit {secs['limit']:.2f}s "
                  + " ".join(f"{v} {secs[v]:.2f}s" for v in a.variants) + f" | ratio {line}", flush=True)
            for v in a.variants:
                ratios[v].append(secs["limit"] / secs[v])
        for v, rs in ratios.items():
            q = np.percentile(rs, [25, 75])
            print(f"threads={th} {v}: median ratio {statistics.median(rs):.3f} (IQR {q[0]:.3f}–{q[1]:.3f}, "
                  f"{len(rs)} rounds)", flush=True)


if __name__ == "__main__":
    main()
