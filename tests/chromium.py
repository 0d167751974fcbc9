"""Open a built page in headless Debian Chromium with the network cut off.

Counts rendered plotly figures (``main-svg`` elements in the DOM after scripts ran)
and collects the page's console messages. Chromium's log does not say a message's
level, so every message counts as a problem except the theme's own status lines and
two that every Jupyter Book 1 page prints and that are harmless.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HARMLESS = ("THEBE_JS_URL", "theme mode", "has already been declared",
            '"[PST]: ', '"[togglebutton]: ')


def executable() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(url: str, budget_ms: int = 15000) -> subprocess.CompletedProcess:
    """Chromium's ``--dump-dom`` of ``url`` (a file or this machine's server) after ``budget_ms`` of virtual time."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [executable(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}",
               '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost',
               "--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget_ms}",
               "--dump-dom", url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def render(page: Path, budget_ms: int = 15000) -> tuple[str, list[str]]:
    """The page's DOM after scripts ran, and its console messages worth a look."""
    proc = dump_dom(page.resolve().as_uri(), budget_ms)
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    worth = [ln for ln in console if not any(h in ln for h in HARMLESS)]
    return proc.stdout, worth


def count_figures(dom: str) -> int:
    return len(re.findall(r'class="main-svg"', dom))
