"""The report in a real browser: Debian's headless chromium renders it, runs nothing, draws charts.

Skipped when /usr/bin/chromium is missing, except under CI=true where it must
be installed (apt-get install -y --no-install-recommends chromium).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from lxml import html as lhtml

from corral.reports.html import write_html
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.reports.conftest import IMG_NAME, SCRIPT_NAME
from tests.reports.png import read_png

TITLE = "Corral sprawl report"
BAR_BLUE = (0x2F, 0x6D, 0xB5)  # html.BLUE: reclaimable waste bars


pytestmark = pytest.mark.requires("chromium")


@pytest.fixture(scope="module")
def chromium() -> Path:
    return CHROMIUM


def browse(chromium: Path, profile: Path, page: Path, *args: str) -> str:
    """Run headless chromium on a file:// page; returns its stdout (the DOM with --dump-dom)."""
    cmd = [
        str(chromium),
        "--headless",
        *CHROMIUM_FLAGS,
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_browser_runs_scripts_so_the_check_means_something(
    chromium: Path, tmp_path: Path
) -> None:
    """Control: the same payload left unescaped does change the title in this browser."""
    page = tmp_path / "unsafe.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>{TITLE}</title></head>"
        f"<body><p>{SCRIPT_NAME}</p></body></html>"
    )
    dom = browse(chromium, tmp_path / "profile", page, "--dump-dom")
    assert lhtml.document_fromstring(dom).findtext(".//title") == "pwned"


def test_report_renders_charts_and_runs_no_hostile_name(
    chromium: Path, hostile_report: object, tmp_path: Path
) -> None:
    page = write_html(tmp_path / "report.html", hostile_report)  # type: ignore[arg-type]
    dom = browse(chromium, tmp_path / "profile", page, "--dump-dom")
    doc = lhtml.document_fromstring(dom)
    assert doc.findtext(".//title") == TITLE  # no payload changed document.title
    assert not doc.xpath("//script | //img")
    ids = {svg.get("id") for svg in doc.xpath("//svg")}
    assert {"chart-category", "chart-department", "chart-history"} <= ids
    cells = [td.text_content() for td in doc.xpath("//td")]
    assert SCRIPT_NAME in cells and IMG_NAME in cells  # shown as text
    assert "&lt;script&gt;document.title" in dom  # serialized escaped by the browser


def test_screenshot_is_not_blank(chromium: Path, hostile_report: object, tmp_path: Path) -> None:
    page = write_html(tmp_path / "report.html", hostile_report)  # type: ignore[arg-type]
    shot = tmp_path / "shot.png"
    browse(chromium, tmp_path / "profile", page, "--window-size=1200,2400", f"--screenshot={shot}")
    image = read_png(shot)[:, :, :3]
    assert image.shape[:2] == (2400, 1200)
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 100  # text anti-aliasing, cards, bars: far from a blank page
    background = np.all(image == image[-1, -1], axis=2).mean()
    assert background < 0.9
    bars = np.all(image == np.array(BAR_BLUE, dtype=np.uint8), axis=2).sum()
    assert bars > 2000  # the SVG bars were drawn, in their colour
