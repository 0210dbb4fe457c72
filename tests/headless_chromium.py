"""Drive Debian's `chromium` headless: screenshot a local page, or dump its DOM after load.

Every network feature chromium has is switched off and each run gets a fresh profile, so a
render reads nothing but the file it is given.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

#: Debian's package is `chromium`; other distributions name the binary differently.
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of an installed chromium, or None."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="llem-chromium-") as profile:
        return subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 4000) -> Path:
    """Render ``page`` in a ``width`` x ``height`` window and save the viewport as a PNG."""
    _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def dump_dom(page: Path) -> str:
    """The DOM as chromium holds it once the page (and its scripts) have loaded."""
    return _run(page, "--dump-dom", "--virtual-time-budget=5000").stdout
