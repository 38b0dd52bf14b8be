"""Check the built website in headless Chromium.

For every HTML page in `_docs/` (the home page first), Chromium loads the page and dumps the
rendered DOM; the page passes when it has a title and a heading, a sidebar whose links resolve,
every internal link and image resolves to a file in the site, and no text looks like a Python
traceback or raw notebook JSON. API pages must also mention every name their module exports.
Prints one line per page and a summary; exit code 1 if any page fails.

Usage: python tools/check_site.py [_docs] [--screenshot out.png]
"""
import sys, os, re, json, shutil, subprocess, tempfile, importlib
from pathlib import Path
from urllib.parse import urlparse, unquote

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage", "--virtual-time-budget=3000"]

def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c): return shutil.which(c)
    sys.exit("check_site: no chromium on PATH (apt-get install chromium)")

def dump_dom(browser, page, profile):
    r = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    if r.returncode: raise RuntimeError(f"chromium exit {r.returncode}: {r.stderr[-500:]}")
    return r.stdout

def module_exports(site_page, root):
    "Names in `__all__` of the module exported by the notebook behind this page, if any."
    nb = root/"nbs"/(site_page.stem + ".ipynb")
    if not nb.exists(): return []
    src = nb.read_text()
    m = re.search(r"#\|\s*default_exp\s+([\w.]+)", src)
    if not m: return []
    try: mod = importlib.import_module(f"pathnb.{m.group(1)}")
    except Exception as e: return [f"<import of pathnb.{m.group(1)} failed: {e}>"]
    return list(getattr(mod, "__all__", []))

def check_page(html, page, site, root):
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, "html.parser")
    errs = []
    title = (soup.title.string or "").strip() if soup.title else ""
    if not title: errs.append("no <title>")
    if not soup.find(["h1"]): errs.append("no <h1> heading")
    side = soup.select("#quarto-sidebar a[href], nav.sidebar a[href], .sidebar a[href]")
    if not side: errs.append("no sidebar links")
    main = soup.find("main") or soup.body or soup
    text = main.get_text(" ")
    if "Traceback (most recent call last)" in text: errs.append("shows a Python traceback")
    if re.search(r'"cell_type"\s*:|"nbformat"\s*:', text): errs.append("shows raw notebook JSON")
    for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
        for el in soup.find_all(tag):
            url = el.get(attr)
            if not url or url.startswith(("#", "data:", "mailto:", "javascript:")): continue
            u = urlparse(url)
            if u.scheme or u.netloc: continue
            target = (page.parent/unquote(u.path)).resolve() if not u.path.startswith("/") else (site/unquote(u.path.lstrip("/"))).resolve()
            if u.path == "": continue
            if target.is_dir(): target = target/"index.html"
            if not target.exists(): errs.append(f"broken {tag} {attr}={url}")
    missing = [n for n in module_exports(page, root) if n not in text]
    if missing: errs.append(f"API names not documented: {missing[:8]}")
    return title, errs

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(__file__).resolve().parent.parent
    site = Path(args[0]).resolve() if args else root/"_docs"
    pages = sorted(p for p in site.rglob("*.html") if "site_libs" not in p.parts)
    home = site/"index.html"
    if not home.exists(): print(f"FAIL {home}: the home page is missing"); print("0 passed, 1 failed"); sys.exit(1)
    pages.remove(home); pages.insert(0, home)
    browser = chromium()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as prof:
        if "--screenshot" in sys.argv:
            shot = Path(sys.argv[sys.argv.index("--screenshot") + 1]).resolve()
            subprocess.run([browser, *FLAGS, f"--user-data-dir={prof}", f"--screenshot={shot}", "--window-size=1280,900", home.as_uri()], capture_output=True, timeout=120)
        for p in pages:
            try:
                title, errs = check_page(dump_dom(browser, p, prof), p, site, root)
            except Exception as e: title, errs = "?", [f"could not load: {e}"]
            rel = p.relative_to(site)
            if errs: failed += 1; print(f"FAIL {rel} ({title}): " + "; ".join(errs[:6]))
            else: passed += 1; print(f"ok   {rel} ({title})")
    print(f"site check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

if __name__ == "__main__": main()
