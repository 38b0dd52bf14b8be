"""Write nbs/sidebar.yml: notebooks grouped into sections by their number, then tutorials and data cards.

Usage: python tools/sidebar.py [--check]
"""
import sys, json, re
from pathlib import Path

SECTIONS = [  # (first number, last number, title)
    (0, 9, "Whole-slide infrastructure"), (10, 19, "Evaluation toolkit"), (20, 29, "CARE"),
    (30, 39, "NuClass"), (40, 49, "Radiology–pathology"), (50, 89, "More"), (90, 99, "Running pathnb"),
]

def title_of(nb):
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(c["source"]), re.M)
            if m: return m.group(1).strip()
    return nb.stem

def build(root):
    nbs = root/"nbs"
    lines = ["website:", "  sidebar:", "    contents:", "      - index.ipynb"]
    def section(title, items):
        if not items: return
        lines.extend([f"      - section: \"{title}\"", "        contents:"] + [f"          - {i}" for i in items])
    top = sorted(p for p in nbs.glob("*.ipynb") if re.match(r"^\d+_", p.name))
    section("Tutorials", [f"tutorials/{p.name}" for p in sorted((nbs/"tutorials").glob("*.ipynb")) if not p.name.startswith(("_", "."))])
    for lo, hi, title in SECTIONS:
        section(title, [p.name for p in top if lo <= int(p.name.split("_")[0]) <= hi])
    cards = root/"data_cards"
    if cards.is_dir():
        section("Data cards", ["data_cards/index.md"] + [f"data_cards/{p.name}" for p in sorted(cards.glob("*.md")) if p.name not in ("index.md", "TEMPLATE.md")] + ["data_cards/TEMPLATE.md"] * (cards/"TEMPLATE.md").exists())
    return "\n".join(lines) + "\n"

def main():
    root = Path(__file__).resolve().parent.parent
    text, dest = build(root), root/"nbs"/"sidebar.yml"
    if "--check" in sys.argv:
        if not dest.exists() or dest.read_text() != text: sys.exit("nbs/sidebar.yml is out of date: run python tools/sidebar.py")
        print("nbs/sidebar.yml is up to date"); return
    dest.write_text(text); print(f"wrote {dest}")

if __name__ == "__main__": main()
