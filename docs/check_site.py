#!/usr/bin/env python3
"""Check the built site in a real headless browser (Chromium from the OS packages, through Selenium).

    python docs/check_site.py [--site site] [--keep-artifacts t]

Serves ``site/`` on a loopback port under the path of mkdocs.yml's ``site_url`` (as it will be hosted)
and checks:

- every page loads with no console error, no broken image and nothing wider than the window, at a
  desktop and a phone width (wide code blocks and tables scroll inside themselves);
- every link of every page to the site itself resolves (source views included);
- the navigation links every page;
- the search for ``fsdp`` lists the FSDP test case first;
- an unknown address gets the 404 page, styled;
- screenshots of the home page and of the FSDP page are made (kept, and their folder printed, with
  ``--keep-artifacts t``).

Prints one line per problem and a summary; exit status 1 when there is a problem, 2 on bad input.
Without Chromium and chromedriver it fails under ``CI=true`` and says how to install them elsewhere.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 900)
NARROW = (390, 844)  # a phone: wide tables and code must scroll inside themselves here too
SEARCH_TERM = "fsdp"
SEARCH_EXPECTED = "3.test_cases/pytorch/FSDP/"
SCREENSHOT_PAGES = {"home.png": "", "fsdp.png": SEARCH_EXPECTED}
TRUE_WORDS = {"t", "true", "1", "yes", "y"}

# Per page, in the browser: images that did not load, page-wide horizontal overflow, same-site links.
PAGE_PROBE = """
const broken = Array.from(document.images)
    .filter(img => !img.complete || img.naturalWidth === 0)
    .map(img => img.getAttribute('src'));
const root = document.documentElement;
const links = Array.from(document.querySelectorAll('a[href]'))
    .map(a => a.href.split('#')[0])
    .filter(href => href.startsWith(location.origin));
return {broken: broken, overflow: root.scrollWidth - root.clientWidth, links: links};
"""
NAV_LINKS = """
return Array.from(document.querySelectorAll('.md-nav--primary a.md-nav__link[href]'))
    .map(a => a.href.split('#')[0]);
"""


def site_prefix(config: Path) -> str:
    """The path part of mkdocs.yml's site_url ('/' when unset), with slashes on both ends."""
    text = config.read_text()
    site_url = (yaml.safe_load(text) or {}).get("site_url") or "/"
    path = urllib.parse.urlparse(site_url).path or "/"
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def site_pages(site: Path) -> list[str]:
    """Site-relative addresses of every page (folder URLs of the index.html files)."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        relative = index.parent.relative_to(site).as_posix()
        if not relative.startswith("assets"):
            pages.append("" if relative == "." else relative + "/")
    return sorted(pages)


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site folder under ``prefix``; unknown paths get 404.html with status 404."""

    prefix = "/"

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.urlparse(path).path
        if not clean.startswith(self.prefix) and clean + "/" != self.prefix:
            return str(Path(self.directory) / ".outside-the-site-prefix")
        return super().translate_path("/" + clean[len(self.prefix) :])

    def list_directory(self, path):
        """No folder listings: a static host has none, so a link to a folder without a page is broken."""
        self.send_error(404)

    def send_error(self, code, message=None, explain=None):
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # quiet: problems are reported by the checks
        pass


def serve(site: Path, prefix: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(type("Handler", (SiteHandler,), {"prefix": prefix}), directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{prefix}"


def status_of(url: str) -> int:
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - the loopback server's own URLs
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def find_browser() -> tuple[str | None, str | None]:
    browser = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    return browser, shutil.which("chromedriver")


def start_browser(browser: str, driver_path: str):
    # Selenium is imported where it is used: the docs session has it, the project venv's tests do not.
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def check_pages(driver, base: str, pages: list[str]) -> tuple[list[str], set[str]]:
    """Load every page; problems, and every same-site link seen."""
    problems: list[str] = []
    links: set[str] = set()
    for page in pages:
        driver.get(base + page)
        probe = driver.execute_script(PAGE_PROBE)
        name = page or "(home)"
        problems += [f"{name}: console error: {message}" for message in console_errors(driver)]
        problems += [f"{name}: broken image {src}" for src in probe["broken"]]
        if probe["overflow"] > 0:
            problems += [f"{name}: content {probe['overflow']}px wider than the window ({WINDOW[0]}px)"]
        driver.set_window_size(*NARROW)
        narrow = driver.execute_script(PAGE_PROBE)["overflow"]
        if narrow > 0:
            problems += [f"{name}: content {narrow}px wider than a {NARROW[0]}px window"]
        driver.set_window_size(*WINDOW)
        links.update(probe["links"])
    return problems, links


def check_links(links: set[str]) -> list[str]:
    return [f"broken link: {url} ({code})" for url in sorted(links) if (code := status_of(url)) != 200]


def check_nav(driver, base: str, pages: list[str]) -> list[str]:
    driver.get(base)
    linked = {url.removeprefix(base) for url in driver.execute_script(NAV_LINKS)}
    linked = {"" if url in ("", ".") else url for url in linked}
    return [f"navigation: no link to {page or '(home)'}" for page in pages if page not in linked]


FIRST_RESULT = "const a = document.querySelector('.md-search-result__item a'); return a ? a.href : null;"


def check_search(driver, base: str) -> list[str]:
    from selenium.common.exceptions import TimeoutException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support import expected_conditions  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    driver.get(base)
    wait = WebDriverWait(driver, 30)
    try:
        box = wait.until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input"))
        )
        box.click()
        box.send_keys(SEARCH_TERM)
        # The result list is rebuilt as each typed character arrives: read the first link's address in
        # the page (never through an element handle that a rebuild makes stale) until it stays the same.
        href = wait.until(lambda d: d.execute_script(FIRST_RESULT))
        for _ in range(20):
            time.sleep(0.5)
            current = driver.execute_script(FIRST_RESULT)
            if current == href:
                break
            href = current
    except TimeoutException:
        return [f"search {SEARCH_TERM!r}: no search box or no result within 30 s"]
    href = href or ""
    if not href.split("#")[0].endswith(SEARCH_EXPECTED):
        return [f"search {SEARCH_TERM!r}: first result is {href}, expected the page {SEARCH_EXPECTED}"]
    return []


def check_not_found(driver, base: str) -> list[str]:
    """An unknown address shows the 404 page with the site's own style sheet (site_url paths)."""
    driver.get(base + "no-such-page/")
    # The page's own 404 status is logged as an error; a missing asset must not be.
    errors = [message for message in console_errors(driver) if "no-such-page" not in message]
    styled = driver.execute_script(
        "return document.styleSheets.length > 0 && !!document.querySelector('.md-header')"
    )
    problems = [f"404 page: console error: {message}" for message in errors]
    return problems + ([] if styled else ["404 page: not styled (check site_url)"])


def screenshots(driver, base: str, folder: Path) -> list[str]:
    problems = []
    for name, page in SCREENSHOT_PAGES.items():
        driver.get(base + page)
        path = folder / name
        if not driver.save_screenshot(str(path)) or path.stat().st_size < 10_000:
            problems.append(f"screenshot {name}: empty")
    return problems


def run(site: Path, keep: bool) -> int:
    browser, driver_path = find_browser()
    if not browser or not driver_path:
        missing = "Chromium" if not browser else "chromedriver"
        message = (
            f"{missing} not found; install with: sudo make system-deps (packages chromium, chromium-driver)"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            print(f"error: {message}", file=sys.stderr)
            return 1
        print(f"check_site: skipped, {message}")
        return 0
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download a driver
    pages = site_pages(site)
    server, base = serve(site, site_prefix(ROOT / "mkdocs.yml"))
    folder = Path(tempfile.mkdtemp(prefix="site-check-"))
    started = time.monotonic()
    driver = start_browser(browser, driver_path)
    try:
        problems, links = check_pages(driver, base, pages)
        problems += check_links(links)
        problems += check_nav(driver, base, pages)
        problems += check_search(driver, base)
        problems += check_not_found(driver, base)
        problems += screenshots(driver, base, folder)
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    for problem in problems:
        print(problem)
    seconds = time.monotonic() - started
    print(
        f"check_site: {len(pages)} pages, {len(links)} links, search {SEARCH_TERM!r}, 404 page, "
        f"{len(SCREENSHOT_PAGES)} screenshots: {len(problems)} problems ({seconds:.0f} s)"
    )
    if keep:
        print(f"check_site: screenshots kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="the built site (default: site/)")
    parser.add_argument("--keep-artifacts", default="f", metavar="t|f", help="keep the screenshots (t)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file() or not (args.site / "404.html").is_file():
        print(
            f"error: --site {args.site}: no built site there (index.html, 404.html); run make docs",
            file=sys.stderr,
        )
        return 2
    return run(args.site, str(args.keep_artifacts).lower() in TRUE_WORDS)


if __name__ == "__main__":
    sys.exit(main())
