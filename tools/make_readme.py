"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does with Quarto, without it).

Markdown cells are copied; `#| hide` cells are dropped; other code cells become Python blocks
followed by their saved text output. Usage: python tools/make_readme.py [--check]
"""
import json, sys, re
from pathlib import Path

def convert(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            out.append(src.strip())
        elif c["cell_type"] == "code":
            lines = src.splitlines()
            flags = {l.strip() for l in lines if l.strip().startswith("#|")}
            if any(re.match(r"#\|\s*(hide|include:\s*false)", f) for f in flags):
                continue
            code = "\n".join(l for l in lines if not l.strip().startswith("#|")).strip()
            if code and not any(re.match(r"#\|\s*echo:\s*false", f) for f in flags):
                out.append(f"```python\n{code}\n```")
            for o in c.get("outputs", []):
                if "image/png" in o.get("data", {}):
                    out.append("*(The figure is drawn by this cell of `nbs/index.ipynb`; "
                               "see it on the documentation website's home page.)*")
                    continue
                txt = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
                if txt.strip():
                    out.append("    " + txt.rstrip().replace("\n", "\n    "))
    text = "\n\n".join(out) + "\n"
    # links between notebooks are relative to nbs/ in the notebook, relative to the repository root in the README
    text = re.sub(r"\]\((?!https?:|/|#|nbs/|data_cards/)([\w./-]+\.ipynb)\)", r"](nbs/\1)", text)
    # the notebook's title block: '# T' then '> summary'
    return text

def main():
    root = Path(__file__).resolve().parent.parent
    text = ("<!-- WARNING: generated from nbs/index.ipynb by tools/make_readme.py; do not edit -->\n\n"
            + convert(root/"nbs"/"index.ipynb"))
    dest = root/"README.md"
    if "--check" in sys.argv:
        if not dest.exists() or dest.read_text() != text:
            sys.exit("README.md is out of date: run python tools/make_readme.py")
        print("README.md is up to date")
        return
    dest.write_text(text)
    print(f"wrote {dest}")

if __name__ == "__main__":
    main()
