"""Write nbs/sidebar.yml: tutorials, then one section per subpackage folder of nbs/ (in order), then data cards.

Usage: python tools/sidebar.py [--check]
"""
import sys, json, re
from pathlib import Path

SECTIONS = [  # (folder of nbs/, "" for the top level; numbers lo..hi; title): one per subpackage of pathnb
    ("", 0, 78, "Core"), ("wsi", 0, 99, "Whole-slide infrastructure"),
    ("evaluation", 0, 99, "Evaluation toolkit"), ("care", 0, 99, "CARE"),
    ("nuclass", 0, 99, "NuClass"), ("xmodal", 0, 99, "Radiology–pathology"),
    ("", 79, 89, "import pathnb as pn"), ("app", 0, 99, "Running pathnb"),
    ("", 90, 99, "Project"),
]

def title_of(nb):
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(c["source"]), re.M)
            if m:
                return m.group(1).strip()
    return nb.stem

def build(root):
    nbs = root/"nbs"
    lines = ["website:", "  sidebar:", "    contents:", "      - index.ipynb"]
    def section(title, items):
        if not items:
            return
        lines.extend([f"      - section: \"{title}\"", "        contents:"] + [f"          - {i}" for i in items])
    section("Tutorials", [f"tutorials/{p.name}" for p in sorted((nbs/"tutorials").glob("*.ipynb"))
                          if not p.name.startswith(("_", "."))])
    for folder, lo, hi, title in SECTIONS:
        nbs_in = sorted(p for p in (nbs/folder).glob("*.ipynb") if re.match(r"^\d+_", p.name))
        section(title, [p.relative_to(nbs).as_posix() for p in nbs_in if lo <= int(p.name.split("_")[0]) <= hi])
    cards = root/"data_cards"
    if cards.is_dir():
        section("Data cards", ["data_cards/index.md"]
                + [f"data_cards/{p.name}" for p in sorted(cards.glob("*.md"))
                   if p.name not in ("index.md", "TEMPLATE.md")]
                + ["data_cards/TEMPLATE.md"] * (cards/"TEMPLATE.md").exists())
    return "\n".join(lines) + "\n"

def main():
    root = Path(__file__).resolve().parent.parent
    text, dest = build(root), root/"nbs"/"sidebar.yml"
    if "--check" in sys.argv:
        if not dest.exists() or dest.read_text() != text:
            sys.exit("nbs/sidebar.yml is out of date: run python tools/sidebar.py")
        print("nbs/sidebar.yml is up to date")
        return
    dest.write_text(text)
    print(f"wrote {dest}")

if __name__ == "__main__":
    main()
