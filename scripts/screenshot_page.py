"""The picture of the service's page in the README: serve a model folder on a free loopback
port, type a text into the page in headless Chromium, click Extract, save a PNG.

    python scripts/screenshot_page.py runs/sample/best --text "..." -o docs/img/page.png

Needs Playwright (python) and a Chromium (default /usr/bin/chromium, Debian's); no network.
Chinese text needs a CJK font (Debian: fonts-noto-cjk or fonts-wqy-microhei), or the picture
shows boxes. tests/test_browser.py uses `launch` and `capture` from here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# headless and quiet: no GPU, no first-run pages, nothing fetched in the background
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT = "雷军宣布小米将于明年3月在北京发布新款手机，售价3999元。"


def launch(playwright: Any, user_data_dir: Path, executable: Path = CHROMIUM) -> Any:
    """A headless Chromium context with its own fresh profile folder."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(executable),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1000, "height": 700},
    )


def capture(context: Any, url: str, text: str, output: Path) -> Path:
    """Type `text` into the page at `url`, click Extract, save the whole page as a PNG."""
    page = context.new_page()
    try:
        page.goto(url)
        page.fill("#text", text)
        page.click("#go")
        page.wait_for_selector(".gpl-record")
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(output), full_page=True)
    finally:
        page.close()
    return output


def screenshot(model: Path, text: str, output: Path, executable: Path = CHROMIUM) -> Path:
    """Serve `model` (no API key), extract `text` on its page, save the picture."""
    from playwright.sync_api import sync_playwright

    from gplinker.predict import GPLinker
    from gplinker.serve import create_app, serving

    app = create_app(GPLinker.from_pretrained(model, device="cpu"))
    profile = Path(tempfile.mkdtemp(prefix="gplinker-chromium-"))
    try:
        with serving(app) as url, sync_playwright() as p:
            context = launch(p, profile, executable)
            try:
                return capture(context, url, text, output)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _has_cjk_font() -> bool:
    try:
        found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    except OSError:
        return True  # no fontconfig to ask: let the picture tell
    return bool(found.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="model folder (a run's best/)")
    parser.add_argument("--text", default=TEXT, help="the text typed into the page")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/img/page.png"))
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="Chromium binary")
    args = parser.parse_args()
    if not _has_cjk_font():
        print("warning: no CJK font (fc-list :lang=zh): Chinese will show as boxes")
    print(f"wrote {screenshot(args.model, args.text, args.output, args.chromium)}")


if __name__ == "__main__":
    main()
