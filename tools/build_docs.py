"""Build the pathnb website without Quarto.

Does what `nbdev_proc_nbs` does (process the notebooks into `_proc/`) without its attempt to
download and install Quarto, copies the data cards in, renders `_proc` with smalldocs (a
pure-Python renderer of Quarto website projects) and leaves the site in `_docs/`. Then it
post-processes the pages:
- API cross-links that nbdev wrote as absolute URLs of the published site
  (`<doc_host><doc_baseurl>/slide.html#open_slide`) become relative links to the page this build
  actually wrote (`wsi/02_slide.html#open_slide`), so they work offline and once deployed;
- the search index is also written as `search.js`, which the pages load when `search.json`
  cannot be fetched (a site opened from `file://`), so search works offline;
- numeric table cells get the class `num` (right-aligned by `styles.css`);
- notebook figures saved at 2× (retina: the output's metadata gives the display width, half the PNG's) are shown
  at that width; smalldocs ignores the metadata and would show them at twice their size, or stretched.
Where Quarto is installed, `nbdev_docs` remains the canonical build.

Usage: python tools/build_docs.py
"""
import shutil, subprocess, sys, os, re, json
from pathlib import Path

NUM = re.compile(r"^\s*[-+−]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?\s*(%|×|s|ms|GB|MB|MiB|GiB)?\s*$", re.I)

def page_map(site:Path)->dict:
    "Built page for each public page name: 'wsi/02_slide.html' is served for 'slide.html' (nbdev drops the number)."
    out = {}
    for p in site.rglob("*.html"):
        if "site_libs" in p.parts:
            continue
        rel = p.relative_to(site).as_posix()
        out[rel] = rel
        stem = re.sub(r"^\d+_", "", p.name)
        out.setdefault((p.parent.relative_to(site)/stem).as_posix(), rel)
    return out

def module_pages(root:Path, nbs:Path)->dict:
    "Public page name for each module: nbdev links `pathnb.wsi.slide` to 'slide.html'; map it to its notebook's page."
    out = {}
    for nb in nbs.rglob("*.ipynb"):
        if any(part.startswith((".", "_")) for part in nb.relative_to(nbs).parts):
            continue
        m = re.search(r"#\|\s*default_exp\s+([\w.]+)", nb.read_text(encoding="utf-8"))
        if m:
            out[m.group(1) + ".html"] = nb.relative_to(nbs).with_suffix(".html").as_posix()
    return out

IDS = re.compile(r'\b(?:id|name)="([^"]+)"')

def relink(site:Path, base_url:str, modpages:dict)->tuple[int, list]:
    "Rewrite absolute links to the published site into relative links to built pages; return (count, unresolved)."
    pages = page_map(site)
    ids = {}
    n, bad = 0, []

    def anchor(built:str, frag:str)->str:
        "The fragment if the page has it; else the enclosing name's (`tiles.read` → `tiles`); else none."
        if built not in ids:
            ids[built] = set(IDS.findall((site/built).read_text(encoding="utf-8")))
        name = frag.lstrip("#")
        while name:
            if name in ids[built]:
                return "#" + name
            name = name.rpartition(".")[0]
        return ""
    pat = re.compile(r'(href|src)="' + re.escape(base_url.rstrip("/")) + r'/([^"#]*)(#[^"]*)?"')
    for p in site.rglob("*.html"):
        if "site_libs" in p.parts:
            continue
        html = p.read_text(encoding="utf-8")
        depth = len(p.relative_to(site).parts) - 1
        up = "../" * depth

        def fix(m):
            nonlocal n
            target = m.group(2) or "index.html"
            target = modpages.get(target, target)
            built = pages.get(target)
            if built is None:
                bad.append(f"{p.relative_to(site)} -> {m.group(0)}")
                return m.group(0)
            n += 1
            frag = anchor(built, m.group(3)) if m.group(3) else ""
            return f'{m.group(1)}="{up}{built}{frag}"'

        new = pat.sub(fix, html)
        new = re.sub(r"<td>([^<]*)</td>",
                     lambda m: f'<td class="num">{m.group(1)}</td>' if NUM.match(m.group(1)) else m.group(0), new)
        if new != html:
            p.write_text(new, encoding="utf-8")
    return n, bad

def _img_key(b64:str)->str:
    "Identity of an embedded picture: its length and a hash of its base64 text."
    import hashlib
    b64 = "".join(b64.split())
    return f"{len(b64)}:{hashlib.sha1(b64.encode()).hexdigest()}"

def display_widths(proc:Path)->dict:
    "Display width of every notebook picture that says it (retina figures: metadata width = half the PNG's)."
    out = {}
    for nb in proc.rglob("*.ipynb"):
        for c in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
            for o in c.get("outputs", []):
                for mime in ("image/png", "image/jpeg"):
                    b64 = (o.get("data") or {}).get(mime)
                    w = ((o.get("metadata") or {}).get(mime) or {}).get("width")
                    if b64 and w:
                        out[_img_key("".join(b64) if isinstance(b64, list) else b64)] = int(w)
    return out

def size_images(site:Path, widths:dict)->int:
    "Give embedded notebook pictures their display width (`width=` attribute); return how many."
    n = 0
    pat = re.compile(r'<img src="data:image/(?:png|jpeg);base64,([^"]+)" class="img-fluid">')
    for p in site.rglob("*.html"):
        if "site_libs" in p.parts:
            continue
        html = p.read_text(encoding="utf-8")

        def fix(m):
            nonlocal n
            w = widths.get(_img_key(m.group(1)))
            if w is None:
                return m.group(0)
            n += 1
            return m.group(0)[:-1] + f' width="{w}">'
        new = pat.sub(fix, html)
        if new != html:
            p.write_text(new, encoding="utf-8")
    return n

SEARCH_JS_PATCH = """
  // pathnb: offline search. fetch() of search.json fails from file://; a <script> tag still loads search.js
  const loadScriptIndex = () => new Promise((ok) => {
    const s = document.createElement("script");
    s.src = offset + "search.js";
    s.onload = () => ok(window.SMALLDOCS_SEARCH_INDEX || []);
    s.onerror = () => ok([]);
    document.head.appendChild(s);
  });
"""

def offline_search(site:Path):
    "Write search.js beside search.json and make the search box fall back to it."
    idx = site/"search.json"
    if not idx.exists():
        return False
    data = json.loads(idx.read_text(encoding="utf-8"))
    (site/"search.js").write_text("window.SMALLDOCS_SEARCH_INDEX = " + json.dumps(data) + ";\n", encoding="utf-8")
    js = site/"site_libs"/"smalldocs.js"
    src = js.read_text(encoding="utf-8")
    old = '      index = await r.json();\n    } catch (e) { index = []; }'
    new = ('      if (!r.ok) throw new Error(String(r.status));\n      index = await r.json();\n'
           '    } catch (e) { index = await loadScriptIndex(); }')
    if old not in src:
        raise SystemExit("build_docs: smalldocs.js changed; cannot add the offline search fallback")
    src = src.replace("  // ---- search\n", "  // ---- search\n" + SEARCH_JS_PATCH, 1).replace(old, new, 1)
    js.write_text(src, encoding="utf-8")
    return True

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
    if proc.exists():
        shutil.rmtree(proc)
    proc_nbs(str(cfg.nbs_path), force=True, n_workers=0)
    for extra in ("data_cards",):
        if (root/extra).is_dir():
            shutil.copytree(root/extra, proc/extra)
    smalldocs = Path(sys.executable).parent/"smalldocs"
    cmd = [str(smalldocs) if smalldocs.exists() else "smalldocs", "render", str(proc)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode:
        sys.exit(f"smalldocs failed with exit code {r.returncode}")
    out = root/"_docs"
    if out.exists():
        shutil.rmtree(out)
    shutil.move(str(proc/"_docs"), str(out))
    base = cfg.doc_host.rstrip("/") + "/" + cfg.doc_baseurl.strip("/")
    n, bad = relink(out, base, module_pages(root, Path(cfg.nbs_path)))
    print(f"relinked {n} links to {base} as relative links" + (f"; {len(bad)} unresolved" if bad else ""))
    for b in bad[:20]:
        print("  unresolved:", b)
    print(f"{size_images(out, display_widths(proc))} retina figures shown at their display width")
    if offline_search(out):
        print("search index also written as search.js (search works from file://)")
    npages = len(list(out.rglob("*.html")))
    print(f"built {npages} HTML pages into {out}")

if __name__ == "__main__":
    main()
