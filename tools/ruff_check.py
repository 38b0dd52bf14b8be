"""Style check of the library and the project's scripts: one statement per line and lines of at most 120 characters.

Runs `ruff check pathnb/ bench/ tools/` with the rules of `ruff.toml` and fails on any finding, except one that
is not ours to fix: nbdev writes each module's `__all__` wrapped at 120 characters *after* its `__all__ = `
prefix, so that first line of a module in `pathnb/` can reach 130. Fixes for `pathnb/` belong in the notebooks
(`nbs/`), never in `pathnb/*.py`; `bench/*.py` and `tools/*.py` are edited directly.

Usage: python tools/ruff_check.py
"""
import json, subprocess, sys
from pathlib import Path

PATHS = ["pathnb/", "bench/", "tools/"]

def main():
    root = Path(__file__).resolve().parent.parent
    ruff = Path(sys.executable).parent/"ruff"
    r = subprocess.run([str(ruff) if ruff.exists() else "ruff", "check", "--output-format", "json", *PATHS],
                       cwd=root, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"ruff failed to run: {r.stderr.strip()}")
    found = json.loads(r.stdout or "[]")
    keep = []
    for f in found:
        path = Path(f["filename"])
        line = path.read_text(encoding="utf-8").splitlines()[f["location"]["row"] - 1]
        in_lib = path.resolve().is_relative_to(root/"pathnb")
        if in_lib and f["code"] == "E501" and line.startswith("__all__ = ["):
            continue
        keep.append(f)
    for f in keep:
        rel = Path(f["filename"]).relative_to(root)
        print(f"{rel}:{f['location']['row']}: {f['code']} {f['message']}")
    print(f"ruff: {len(keep)} finding(s) in {', '.join(PATHS)} ({len(found) - len(keep)} nbdev __all__ lines allowed)")
    sys.exit(1 if keep else 0)

if __name__ == "__main__":
    main()
