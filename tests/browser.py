"""Reading the study's reports as a person does: headless Chromium (Debian's package) driven by Playwright.

``open_page`` starts the system Chromium (Playwright's own browser download is never used) with the flags this
closed network needs. ``static_page_images`` and ``snakemake_report_items`` open each report, take screenshots and
return what a reader would see: every image with whether it loaded, and the report's items per category.
"""

from __future__ import annotations

import base64
import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def open_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


IMAGES_JS = "Array.from(document.images).map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0}))"


def static_page_images(path: Path, screenshot: Path) -> tuple[list[dict], str]:
    """The static page's images (alt text, loaded) and its visible text; a full-page screenshot."""
    with open_page() as page:
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(screenshot), full_page=True)
        return page.evaluate(IMAGES_JS), page.inner_text("body")


def snakemake_report_items(path: Path, categories: list[str], screenshots: Path) -> dict[str, list[dict]]:
    """Open every item of every category of a ``snakemake --report`` HTML file, as a reader clicks through it.

    Returns, per category, one entry per shown item: ``kind`` (image or html), ``loaded`` (an image decoded to a
    non-empty picture; an HTML item's frame holds a document) and, for HTML items, the decoded document. Every
    shown item is screenshotted into ``screenshots``.
    """
    screenshots.mkdir(parents=True, exist_ok=True)
    shown: dict[str, list[dict]] = {}
    with open_page() as page:
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(screenshots / "report-home.png"))
        for category in categories:
            page.get_by_role("link", name=category, exact=True).click()
            shown[category] = []
            for label_view in _label_views(page):
                label_view()
                for i in range(page.locator("a[iconname=eye]").count()):
                    page.locator("a[iconname=eye]").nth(i).click()
                    page.wait_for_timeout(300)
                    item = _shown_item(page)
                    name = f"{category}-{len(shown[category])}".replace(" ", "_").replace("/", "_")
                    page.screenshot(path=str(screenshots / f"report-{name}.png"))
                    shown[category].append(item)
            page.get_by_role("link", name="Results", exact=True).click()
    return shown


def _label_views(page):
    """One callable per view of a category: categories whose items have several labels show a toggle per value
    of the first label (e.g. a task); every toggle is a view."""
    toggles = page.locator("nav fieldset label")
    count = toggles.count()
    if count == 0:
        return [lambda: None]
    return [lambda i=i: toggles.nth(i).click() for i in range(count)]


def _shown_item(page) -> dict:
    content = page.locator("div.grow.flex").last
    image = content.locator("img")
    if image.count():
        loaded = image.first.evaluate("i => i.complete && i.naturalWidth > 0")
        return {"kind": "image", "loaded": loaded}
    frame = content.locator("iframe")
    if frame.count():
        src = frame.first.get_attribute("src") or ""
        document = base64.b64decode(src.split("base64,", 1)[1]).decode() if "base64," in src else ""
        return {"kind": "html", "loaded": bool(document), "document": document}
    return {"kind": "none", "loaded": False}
