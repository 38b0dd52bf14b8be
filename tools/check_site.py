"""Check the built website in headless Chromium.

For every HTML page in `_docs/` (the home page first), Chromium loads the page and dumps the
rendered DOM; the page passes when it has a title and a heading, a sidebar whose links resolve,
every internal link and image resolves to a file in the site, and no text looks like a Python
traceback or raw notebook JSON. API pages must also mention every name their module exports.
Links must also:
- never point at the published site's own URL (`doc_host` + `doc_baseurl` from settings.ini): the
  build makes those relative, and one left absolute would 404 offline and, with a wrong page name,
  once deployed;
- reach an element with that id when they carry a `#fragment` (API cross-links such as
  `wsi/02_slide.html#open_slide`).
Every raster image must be sharp: its natural width at least 1.5× the width it is displayed at
(1280 px window). The text must not carry internal project jargon (planning-document sections,
issue numbers, seed-document names), and every page of a method (care/, nuclass/, xmodal/) must link
to the References page that cites its paper. The offline search index (`search.js`) must load from
`file://` and find a known function.
Prints one line per page and a summary; exit code 1 if any page fails.

Usage: python tools/check_site.py [_docs] [--screenshot out.png] [--screenshots DIR] [--extra PAGE.html ...]
  --screenshots DIR   also save home.png, api.png, tutorial.png (and report.png for the first --extra page)
  --extra PAGE.html   check further pages outside the site (e.g. the demo report) for images and links
"""
import sys, os, re, json, shutil, subprocess, tempfile, importlib
from pathlib import Path
from urllib.parse import urlparse, unquote

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage", "--virtual-time-budget=3000",
         "--window-size=1280,900"]
IMAGES = "fail"  # --images warn: report blurry images without failing the page
BLURRY = []
METHOD_DIRS = ("care", "nuclass", "xmodal")   # pages of the implemented papers: each links its citation
JARGON = re.compile(r"\bseeds? 00[0-3]\b|DESIGN\s*§|\bissue #\d+", re.I)
RASTER = re.compile(r"\.(png|jpe?g|gif|webp)(\?|#|$)|^data:image/(png|jpe?g|gif|webp)", re.I)
PROBE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var r = []; document.querySelectorAll("img").forEach(function (i) {
    r.push([i.getAttribute("src") || "", i.naturalWidth, i.getBoundingClientRect().width]); });
  var d = document.createElement("div"); d.id = "pathnb-sitecheck"; d.setAttribute("data-imgs", JSON.stringify(r));
  document.body.appendChild(d); }, 200); });</script>"""

def site_url():
    "The published site's URL from settings.ini (doc_host + doc_baseurl)."
    import configparser
    c = configparser.ConfigParser()
    c.read(Path(__file__).resolve().parent.parent/"settings.ini")
    d = c["DEFAULT"]
    return d.get("doc_host", "").rstrip("/") + "/" + d.get("doc_baseurl", "").strip("/")

_IDS = {}
def page_ids(path):
    "Element ids (and a-names) of a built page."
    if path not in _IDS:
        from bs4 import BeautifulSoup
        try:
            soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        except OSError:
            soup = None
        ids = set()
        if soup is not None:
            ids = ({el.get("id") for el in soup.find_all(id=True)}
                   | {el.get("name") for el in soup.find_all("a", attrs={"name": True})})
        _IDS[path] = ids
    return _IDS[path]

def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    sys.exit("check_site: no chromium on PATH (apt-get install chromium)")

def dump_dom(browser, page, profile):
    "The rendered DOM of `page`, loaded from a copy beside it that reports its images' natural and shown widths."
    probe = page.with_name(f".sitecheck-{page.name}")
    html = page.read_text(encoding="utf-8")
    html = html.replace("</body>", PROBE + "</body>") if "</body>" in html else html + PROBE
    probe.write_text(html, encoding="utf-8")
    try:
        r = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                           capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    if r.returncode:
        raise RuntimeError(f"chromium exit {r.returncode}: {r.stderr[-500:]}")
    return r.stdout

def module_exports(site_page, root):
    "Names in `__all__` of the module exported by the notebook behind this page, if any."
    nb = root/"nbs"/(site_page.stem + ".ipynb")
    if not nb.exists():
        return []
    src = nb.read_text()
    m = re.search(r"#\|\s*default_exp\s+([\w.]+)", src)
    if not m:
        return []
    try:
        mod = importlib.import_module(f"pathnb.{m.group(1)}")
    except Exception as e:
        return [f"<import of pathnb.{m.group(1)} failed: {e}>"]
    return list(getattr(mod, "__all__", []))

def check_page(html, page, site, root, public=None):
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, "html.parser")
    errs = []
    title = (soup.title.string or "").strip() if soup.title else ""
    if not title:
        errs.append("no <title>")
    if not soup.find(["h1"]):
        errs.append("no <h1> heading")
    side = soup.select("#quarto-sidebar a[href], nav.sidebar a[href], .sidebar a[href]")
    if not side:
        errs.append("no sidebar links")
    main = soup.find("main") or soup.body or soup
    text = main.get_text(" ")
    if "Traceback (most recent call last)" in text:
        errs.append("shows a Python traceback")
    if re.search(r'"cell_type"\s*:|"nbformat"\s*:', text):
        errs.append("shows raw notebook JSON")
    m = JARGON.search(text)
    if m:
        errs.append(f"internal jargon in the text: {text[max(0, m.start() - 40):m.end() + 20]!r}")
    try:
        rel = page.resolve().relative_to(Path(site).resolve()).parts
    except ValueError:   # a page outside the site (--extra)
        rel = ()
    cites = any("97_references" in (a.get("href") or "") for a in main.find_all("a"))
    if rel and rel[0] in METHOD_DIRS and not cites:
        errs.append("a method page that does not cite its paper (link to the References page, 97_references)")
    for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
        for el in soup.find_all(tag):
            url = el.get(attr)
            if not url or url.startswith(("data:", "mailto:", "javascript:")):
                continue
            if public and url.startswith(public):
                errs.append(f"absolute link to the site's own URL {url} (the build should have made it relative)")
                continue
            u = urlparse(url)
            if u.scheme or u.netloc:
                continue
            if u.path == "":
                target = page
            else:
                target = ((page.parent/unquote(u.path)).resolve() if not u.path.startswith("/")
                          else (site/unquote(u.path.lstrip("/"))).resolve())
            if target.is_dir():
                target = target/"index.html"
            if not target.exists():
                errs.append(f"broken {tag} {attr}={url}")
                continue
            frag = unquote(u.fragment)
            if tag == "a" and frag and "=" not in frag and target.suffix == ".html" and frag not in page_ids(target):
                errs.append(f"link to a missing anchor {url}")
    probe = soup.find(id="pathnb-sitecheck")
    if probe is None:
        errs.append("the image probe did not run (page never finished loading?)")
    else:
        for src, natural, shown in json.loads(probe.get("data-imgs") or "[]"):
            if shown and RASTER.search(src) and natural < 1.5 * shown - 0.5:
                msg = (f"blurry image {src[:40]}: {natural} px wide shown at {shown:.0f} px "
                       "(needs ≥ 1.5×; save at higher dpi)")
                if IMAGES == "fail":
                    errs.append(msg)
                else:
                    BLURRY.append(f"{page.name}: {msg}")
    missing = [n for n in module_exports(page, root) if n not in text]
    if missing:
        errs.append(f"API names not documented: {missing[:8]}")
    return title, errs

def opt(name, many=False):
    "Value(s) following --name on the command line."
    argv, vals = sys.argv[1:], []
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            vals.append(argv[i + 1])
    return vals if many else (vals[0] if vals else None)

def check_search(browser, site, profile):
    "Load search.js from file:// in a harness page and search it with the site's Fuse for a known function."
    fuse = next((p for p in (site/"site_libs").rglob("fuse*.js")), None)
    if not (site/"search.js").exists():
        return ["no search.js: search cannot work from file://"]
    if fuse is None:
        return ["no fuse.js in site_libs"]
    harness = site/".sitecheck-search.html"
    harness.write_text(f"""<html><body><script src="{fuse.relative_to(site).as_posix()}"></script>\
<script src="search.js"></script>
<script>var f = new Fuse(window.SMALLDOCS_SEARCH_INDEX || [], \
{{keys: ["title", "section", "text"], ignoreLocation: true, threshold: 0.3}});
var h = f.search("open_slide", {{limit: 5}}); document.body.setAttribute("data-hits", String(h.length));
document.body.setAttribute("data-n", String((window.SMALLDOCS_SEARCH_INDEX || []).length));</script></body></html>""")
    try:
        r = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", harness.as_uri()],
                           capture_output=True, text=True, timeout=120)
    finally:
        harness.unlink()
    m = re.search(r'data-hits="(\d+)"', r.stdout)
    n = re.findall(r'data-n="(\d+)"', r.stdout)
    if not m or int(m.group(1)) == 0:
        return [f"offline search found nothing for open_slide (index entries: {n})"]
    return []

def main():
    global IMAGES
    IMAGES = opt("--images") or "fail"
    args = [a for i, a in enumerate(sys.argv[1:])
            if not a.startswith("--") and not (i and sys.argv[i].startswith("--"))]
    root = Path(__file__).resolve().parent.parent
    site = Path(args[0]).resolve() if args else root/"_docs"
    pages = sorted(p for p in site.rglob("*.html") if "site_libs" not in p.parts)
    home = site/"index.html"
    if not home.exists():
        print(f"FAIL {home}: the home page is missing")
        print("0 passed, 1 failed")
        sys.exit(1)
    pages.remove(home)
    pages.insert(0, home)
    browser = chromium()
    passed = failed = 0
    public = site_url()
    extra = [Path(p).resolve() for p in opt("--extra", many=True)]
    shots = {}
    if opt("--screenshot"):
        shots[Path(opt("--screenshot")).resolve()] = home
    if opt("--screenshots"):
        d = Path(opt("--screenshots")).resolve()
        d.mkdir(parents=True, exist_ok=True)
        api = next((p for p in pages if re.fullmatch(r"\d+_slide", p.stem)), pages[1] if len(pages) > 1 else home)
        tut = next((p for p in pages if "tutorials" in p.parts), home)
        shots.update({d/"home.png": home, d/"api.png": api, d/"tutorial.png": tut})
        if extra:
            shots[d/"report.png"] = extra[0]
    with tempfile.TemporaryDirectory() as prof:
        for shot, page in shots.items():
            subprocess.run([browser, *FLAGS, f"--user-data-dir={prof}", f"--screenshot={shot}", page.as_uri()],
                           capture_output=True, timeout=120)
            print(f"screenshot {shot} ({page.name}): {'saved' if shot.exists() else 'MISSING'}")
        for p in pages + extra:
            own = p in pages
            try:
                title, errs = check_page(dump_dom(browser, p, prof), p, site if own else p.parent, root, public)
                if not own:
                    errs = [e for e in errs if not e.startswith(("no sidebar", "API names"))]
            except Exception as e:
                title, errs = "?", [f"could not load: {e}"]
            rel = p.relative_to(site) if own else p
            if errs:
                failed += 1
                print(f"FAIL {rel} ({title}): " + "; ".join(errs[:6]))
            else:
                passed += 1
                print(f"ok   {rel} ({title})")
        serr = check_search(browser, site, prof)
        if serr:
            failed += 1
            print("FAIL search: " + "; ".join(serr))
        else:
            passed += 1
            print("ok   search (search.js loads from file:// and finds open_slide)")
    if BLURRY:
        print(f"warning: {len(BLURRY)} blurry images (--images warn), e.g. {BLURRY[0]}")
    print(f"site check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main()
