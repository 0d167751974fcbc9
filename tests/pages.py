"""What a reader sees on the built pages: their text, and the noise and machine paths that must not be there."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

#: Lines a clean page never shows: native library logs, Python warnings, tracebacks, progress bars.
NOISE = {
    "TensorFlow/absl start-up line": re.compile(r"absl::InitializeLog|All log messages before absl"),
    "oneDNN notice": re.compile(r"oneDNN custom operations"),
    "TensorFlow log line": re.compile(r"\b[IWE]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \w+\.cc:\d+\]"),
    "Python warning": re.compile(r"\b\w*Warning: "),
    "logged warning": re.compile(r"\bWARNING\b"),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "progress bar": re.compile(r"\d+%\|[^|]*\|"),
}


def text_of(page: Path) -> str:
    """A page's visible text: tags and scripts removed, entities decoded."""
    raw = page.read_text(encoding="utf-8", errors="replace")
    raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
    return html.unescape(re.sub(r"(?s)<[^>]+>", " ", raw))


def pages(html_dir: Path) -> list[Path]:
    """Every page of a built book (the HTML a reader opens), search and index pages left out."""
    skip = {"search.html", "genindex.html"}
    return sorted(p for p in Path(html_dir).rglob("*.html") if p.name not in skip and "_static" not in p.parts)


def problems(html_dir: Path, machine_paths) -> list[str]:
    """Each noise line and absolute path of the building machine found on a page, named with the page."""
    found = []
    paths = sorted({str(Path(p)) for p in machine_paths if p}, key=len, reverse=True)
    for page in pages(html_dir):
        text = text_of(page)
        name = page.relative_to(html_dir)
        for label, pattern in NOISE.items():
            for m in pattern.finditer(text):
                found.append(f"{name}: {label}: {text[max(0, m.start() - 40):m.end() + 60]!r}")
        for path in paths:
            if path in text:
                found.append(f"{name}: absolute path {path}")
    return found


def plain_shell_environment(venv_bin: Path) -> dict:
    """The environment of a login shell with the project's venv on PATH, not pytest's."""
    return {"PATH": os.pathsep.join([str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "USER": os.environ.get("USER", "root"),
            "SHELL": "/bin/bash", **({"CYTOKIT_SHARED": os.environ["CYTOKIT_SHARED"]}
                                   if "CYTOKIT_SHARED" in os.environ else {})}
