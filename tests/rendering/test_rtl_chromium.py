"""An Arabic alert in a real browser: headless Chromium's screenshot runs right to left.

The HTML tests check ``dir="rtl"`` as a string; this one checks what a reader sees. The
same alert is rendered in Arabic and, as the control, in English; Debian's ``chromium``
takes a screenshot of each, and the text lines of the item block are read off the
pixels: in Arabic their right ends line up on the edge of the content column and their
left ends are ragged, in English the other way round. Without ``dir="rtl"`` on the page
the Arabic item block falls back to flush left (its cells have no ``align``), so this
test fails.

Skipped, with the reason, where ``chromium`` is not installed (``.ci/run`` installs it
when it can). The browser runs with everything that reaches the network turned off.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PIL import Image

from publisher.rendering import EmailRenderer
from publisher.rendering.catalogs import load_catalog
from publisher.store.items import StoredItem
from tests.rendering.conftest import make_rule, translation

TIMEOUT = 60  # seconds for one screenshot; it takes about 2 s
WINDOW = (800, 1400)
INK = 160  # a grey level (0-255) under which a pixel counts as text
ALIGNED = 6  # px: at most this spread of the line ends on the aligned edge
RAGGED = 60  # px: at least this spread of the line ends on the ragged edge
MIN_LINES = 5  # title (2 lines), meta (3), summary (3): fewer means the layout changed

ARABIC_TITLE = "الجرائم الإلكترونية والأدلة الرقمية: ورشة عمل للمحققين في طشقند"
ARABIC_SUMMARY = (
    "تدرّب ثلاثون محققًا ومدعيًا عامًا من آسيا الوسطى على جمع الأدلة الإلكترونية وتبادلها.\n\n"
    "نُظّمت ورشة العمل بالتعاون مع وزارة الداخلية."
)


@pytest.fixture
def workshop_in_arabic(workshop: StoredItem) -> StoredItem:
    """The seed's item with an Arabic text too, so an Arabic reader gets it in Arabic."""
    arabic = translation(
        "ar", ARABIC_TITLE, ARABIC_SUMMARY, "https://www.example.org/ar/news/tashkent-workshop"
    )
    return replace(workshop, translations={**workshop.translations, "ar": arabic})


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(
            "chromium is not installed (Debian: apt-get install chromium; .ci/run does it "
            "as root): the screenshot of the Arabic email is not taken"
        )
    return path


def _start_screenshot(chromium: str, html: Path, png: Path, profile: Path) -> subprocess.Popen[str]:
    """Start headless Chromium on ``html``; the network-facing services are all off."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in CI, and containers without user namespaces
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        # The templates have a dark variant; the measurement expects the light one.
        "--blink-settings=preferredColorScheme=1",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={png}",
        html.as_uri(),
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends all of it
    )


def _finish_screenshot(process: subprocess.Popen[str], png: Path) -> None:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"chromium took more than {TIMEOUT} s for {png}:\n{output[-2000:]}")
    if process.returncode != 0 or not png.is_file():
        pytest.fail(
            f"chromium exited with {process.returncode} without writing {png}:\n{output[-2000:]}"
        )


def _screenshots(htmls: dict[str, str], directory: Path) -> dict[str, Path]:
    """One PNG per HTML document, the browsers running side by side; kept in ``directory``."""
    chromium = _chromium()
    pngs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profiles:
        running = []
        for name, html in htmls.items():
            page = directory / f"{name}.html"
            page.write_text(html, encoding="utf-8")
            pngs[name] = directory / f"{name}.png"
            profile = Path(profiles) / name
            running.append((_start_screenshot(chromium, page, pngs[name], profile), pngs[name]))
        for process, png in running:
            _finish_screenshot(process, png)
    return pngs


@dataclass(frozen=True)
class Line:
    top: int
    bottom: int
    left_gap: int  # px from the content column's left edge to the line's first ink
    right_gap: int  # px from the line's last ink to the content column's right edge


@dataclass(frozen=True)
class Layout:
    column: tuple[int, int]  # the white content column, x of its first and last pixel
    block: tuple[int, int]  # the item block, between its top rule and the footer's
    lines: tuple[Line, ...]

    @property
    def left_spread(self) -> int:
        gaps = [line.left_gap for line in self.lines]
        return max(gaps) - min(gaps)

    @property
    def right_spread(self) -> int:
        gaps = [line.right_gap for line in self.lines]
        return max(gaps) - min(gaps)

    def describe(self) -> str:
        gaps = ", ".join(f"y={line.top}: {line.left_gap}|{line.right_gap}" for line in self.lines)
        return (
            f"column x={self.column}, item block y={self.block}, {len(self.lines)} lines "
            f"(gap left|right: {gaps}); spread of the left ends {self.left_spread} px, "
            f"of the right ends {self.right_spread} px"
        )


def _layout(png: Path) -> Layout:
    """The text lines of the item block, read off the screenshot.

    The content column is the white card on the grey page (its most common white extent
    row by row); the item block lies between the first two horizontal rules in it (the
    item's top border and the footer's); a text line is a band of rows holding ink, the
    1–2 px gaps under Arabic dots and vowel marks bridged.
    """
    with Image.open(png) as image:
        grey = image.convert("L")
    width, height = grey.size
    pixels = grey.tobytes()
    rows = [pixels[y * width : (y + 1) * width] for y in range(height)]

    extents = Counter(
        (row.find(255), row.rfind(255))
        for row in rows
        if row.find(255) >= 0 and row.rfind(255) - row.find(255) > width // 3
    )
    assert extents, f"no white content column in {png}"
    (left, right), _ = extents.most_common(1)[0]

    def is_rule(row: bytes) -> bool:  # the borders, #d9dee3, across most of the column
        return sum(1 for v in row[left : right + 1] if 200 <= v < 250) > (right - left) // 2

    rules = [y for y, row in enumerate(rows) if is_rule(row)]
    starts = [y for y in rules if y - 1 not in rules]
    assert len(starts) >= 2, f"no item block between two rules in {png} (rules at y={rules})"
    top = next(y for y in rules if y >= starts[0] and y + 1 not in rules) + 1
    bottom = starts[1]

    ink = bytes(1 if v < INK else 0 for v in range(256))
    bands: list[list[int]] = []
    for y in range(top, bottom):
        if 1 in rows[y][left : right + 1].translate(ink):
            if bands and y - bands[-1][-1] <= 3:
                bands[-1].append(y)
            else:
                bands.append([y])
    lines = []
    for band in bands:
        if band[-1] - band[0] < 6:  # a stray mark, not a line of text
            continue
        marks = [rows[y][left : right + 1].translate(ink) for y in band]
        first = min(m.find(1) for m in marks if 1 in m)
        last = max(m.rfind(1) for m in marks)
        lines.append(Line(band[0], band[-1], first, right - left - last))
    return Layout((left, right), (top, bottom), tuple(lines))


def test_arabic_alert_runs_right_to_left_in_chromium(
    renderer: EmailRenderer, workshop_in_arabic: StoredItem, tmp_path: Path
) -> None:
    """The Arabic alert's lines are flush right in Chromium; the English control's, left."""
    arabic = renderer.render_alert(workshop_in_arabic, rule=make_rule("ar"), default_locale="en")
    english = renderer.render_alert(workshop_in_arabic, rule=make_rule("en"), default_locale="en")

    # The screenshot is of a translated email: the catalog's words and the Arabic text.
    unsubscribe = load_catalog("ar").translations.gettext("Unsubscribe")
    assert unsubscribe != "Unsubscribe"
    assert unsubscribe in arabic.html
    assert "Unsubscribe" not in arabic.html
    assert ARABIC_TITLE in arabic.html
    assert '<html lang="ar" dir="rtl"' in arabic.html
    assert '<html lang="en" dir="ltr"' in english.html

    pngs = _screenshots({"alert-ar": arabic.html, "alert-en": english.html}, tmp_path)
    ar, en = _layout(pngs["alert-ar"]), _layout(pngs["alert-en"])
    where = f"\nscreenshots: {pngs['alert-ar']} and {pngs['alert-en']}"
    measured = f"\nar: {ar.describe()}\nen: {en.describe()}"

    assert len(ar.lines) >= MIN_LINES, f"too few text lines in Arabic{measured}{where}"
    assert len(en.lines) >= MIN_LINES, f"too few text lines in English{measured}{where}"
    assert ar.right_spread <= ALIGNED < RAGGED <= ar.left_spread, (
        f"the Arabic lines are not flush right{measured}{where}"
    )
    assert en.left_spread <= ALIGNED < RAGGED <= en.right_spread, (
        f"the English lines are not flush left{measured}{where}"
    )
