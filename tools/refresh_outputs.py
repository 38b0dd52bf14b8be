"""Re-run notebooks and store their outputs, so that the website shows what today's code prints.

The website renders the outputs saved in the notebooks; the tests re-run the code but never save. When
code, dependencies or texts change, the saved outputs can fall behind (another torch build moves the
numbers of a short training run). This re-executes each notebook the way `nbdev_test` does and writes
the new outputs in place:

    python tools/refresh_outputs.py nbs/tutorials/04_mammo_pathology.ipynb [more.ipynb ...]
    nbdev_clean                                   # then review `git diff` and commit

- Cells flagged with a test flag of settings.ini (`#| slow`, `#| cuda`) and the `nbdev_export()` cell are not
  run; the outputs they have are kept (a slow result stays documented until someone reruns it with --flags).
- `--flags slow` runs the slow cells too (their outputs are then replaced).
- A notebook whose run fails is left untouched and the error is printed; the others are still written.
- Figures are stored at twice their display size (IPython's retina format: the output's metadata keeps the display
  width), so they stay sharp on the website; the docs build shows them at that width.
- One thread per library (OMP_NUM_THREADS=1) and no progress bars (PATHNB_PROGRESS=0), as in CI; the clock time
  at the start of pathnb's log lines is dropped, so that a rerun leaves them unchanged.
"""
import argparse, copy, os, re, sys, tempfile
from pathlib import Path

def _flags(src:str)->set:
    "The `#| word` directives at the top of a cell."
    out = set()
    for line in src.splitlines():
        m = re.match(r"#\|\s*([\w-]+)", line.strip())
        if m:
            out.add(m.group(1))
        elif line.strip():
            break
    return out

def _noise(o)->bool:
    "Stderr lines that say something about the kernel, not the code (tqdm without ipywidgets)."
    return (o.get("output_type") == "stream" and o.get("name") == "stderr"
            and ("TqdmWarning" in o.get("text", "") or "notebook_tqdm" in o.get("text", "")))

_STAMP = re.compile(r"^\d\d:\d\d:\d\d (?=(DEBUG|INFO|WARNING|ERROR|CRITICAL) )", re.M)

def _tidy(o):
    "Drop the clock time that pathnb's log lines start with, so that a rerun does not change them."
    if o.get("output_type") == "stream":
        o["text"] = _STAMP.sub("", o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
    return o

SHARP = """
# figures at twice their display size, with the display size in the output's metadata: PNG as IPython's
# retina format, JPEG (photographs of slides) by the formatter below; notebooks that choose a format get its 2x form
import io
import matplotlib_inline.backend_inline as _bi
from matplotlib.figure import Figure as _Figure
from PIL import Image as _Image
_ip = get_ipython()

def _jpeg_2x(fig):
    if not fig.axes and not fig.lines:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=2 * fig.dpi, bbox_inches="tight", pil_kwargs={"quality": 88})
    data = buf.getvalue()
    w, h = _Image.open(io.BytesIO(data)).size
    return data, {"width": w // 2, "height": h // 2}

_orig_formats = _bi.set_matplotlib_formats

def _sharp_formats(*formats, **kw):
    _orig_formats(*["retina" if f == "png" else f for f in formats], **kw)
    if "jpeg" in formats or "jpg" in formats:
        _ip.display_formatter.formatters["image/jpeg"].for_type(_Figure, _jpeg_2x)

_bi.set_matplotlib_formats = _sharp_formats
_sharp_formats("png")
"""

def refresh(path:Path, skip:set, timeout:int=1800)->int:
    "Execute `path` (skipping flagged cells) and write its new outputs; returns the number of refreshed cells."
    from nbclient import NotebookClient
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    run = copy.deepcopy(nb)
    todo = []
    for i, c in enumerate(run.cells):
        if c.cell_type != "code":
            continue
        if (_flags(c.source) & skip) or "nbdev_export(" in c.source:
            c.source = ""   # keeps indices aligned
        else:
            todo.append(i)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}               # inline figures, not Agg
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PATHNB_PROGRESS="0")
    old = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    setup = nbformat.v4.new_code_cell(SHARP)
    run.cells.insert(0, setup)                                                        # sharp figures (2× PNGs)
    todo = [i + 1 for i in todo]
    try:
        NotebookClient(run, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    for i in todo:
        nb.cells[i - 1].outputs = [_tidy(o) for o in run.cells[i].outputs if not _noise(o)]
        nb.cells[i - 1].execution_count = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ipynb.tmp")
    os.close(fd)
    nbformat.write(nb, tmp)
    os.replace(tmp, path)                                                             # atomic: never half a notebook
    return len(todo)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--flags", default="", help="space-separated test flags whose cells should run too (e.g. slow)")
    a = ap.parse_args()
    from nbdev.config import get_config
    skip = set(str(get_config().get("tst_flags", "")).split()) - set(a.flags.split())
    failed = []
    for p in a.notebooks:
        if not p.exists():
            print(f"{p}: no such notebook")
            failed.append(p)
            continue
        try:
            print(f"{p}: {refresh(p, skip)} code cells refreshed", flush=True)
        except Exception as e:
            print(f"{p}: FAILED, left as it was: {type(e).__name__}: {str(e)[-2000:]}", flush=True)
            failed.append(p)
    if failed:
        sys.exit(1)

if __name__ == "__main__":
    main()
