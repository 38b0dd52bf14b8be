"""Build the pathnb website without Quarto.

Does what `nbdev_proc_nbs` does (process the notebooks into `_proc/`) without its attempt to
download and install Quarto, copies the data cards in, renders `_proc` with smalldocs (a
pure-Python renderer of Quarto website projects) and leaves the site in `_docs/`.
Where Quarto is installed, `nbdev_docs` remains the canonical build.

Usage: python tools/build_docs.py
"""
import shutil, subprocess, sys, os
from pathlib import Path

def main():
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    import nbdev.doclinks
    cfg = get_config()
    root = cfg.config_path
    os.chdir(root)
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    proc = root/"_proc"
    if proc.exists(): shutil.rmtree(proc)
    proc_nbs(str(cfg.nbs_path), force=True, n_workers=0)
    for extra in ("data_cards",):
        if (root/extra).is_dir(): shutil.copytree(root/extra, proc/extra)
    smalldocs = Path(sys.executable).parent/"smalldocs"
    cmd = [str(smalldocs) if smalldocs.exists() else "smalldocs", "render", str(proc)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)
    if r.returncode: sys.exit(f"smalldocs failed with exit code {r.returncode}")
    out = root/"_docs"
    if out.exists(): shutil.rmtree(out)
    shutil.move(str(proc/"_docs"), str(out))
    n = len(list(out.rglob("*.html")))
    print(f"built {n} HTML pages into {out}")

if __name__ == "__main__": main()
