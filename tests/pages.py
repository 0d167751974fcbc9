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


#: The sections of chapter 06's page, whatever the data (synthetic or real) and the profile.
XAI_SECTIONS = ["Superpixels", "Sufficiency under four fills", "Which conclusions survive the fill?", "Per class",
                "Does the explanation depend on the model?", "Is LIME stable?", "Deletion and insertion",
                "Where the occluded images go", "Explore it yourself", "Examples and ground truth",
                "Beside the study’s published figures"]
XAI_FILLS = ["grey", "mean", "blur", "imputed"]
XAI_COMPARISONS = ["predicted_minus_first", "lime_minus_random", "top_minus_bottom"]


def headings(page: Path) -> list[str]:
    """The page's section titles (h2 and h3) in order, as a reader sees them."""
    text = Path(page).read_text(encoding="utf-8")
    found = re.findall(r'<h[23][^>]*>(.*?)<a class="headerlink"', text, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in found]


def xai_structure_problems(run_dir: Path) -> list[str]:
    """What chapter 06's page and metrics lack against the structure every profile must produce."""
    import json

    out = []
    page = Path(run_dir) / "book" / "_build" / "html" / "notebooks" / "06_xai.html"
    missing = [s for s in XAI_SECTIONS if s not in headings(page)]
    out += [f"06_xai.html has no section {s!r}" for s in missing]
    m = json.loads((Path(run_dir) / "06_xai" / "metrics.json").read_text())
    if sorted(m.get("fills", {})) != sorted(XAI_FILLS):
        out.append(f"fills {sorted(m.get('fills', {}))}, not {XAI_FILLS}")
    for kind, rec in m.get("fills", {}).items():
        for key in XAI_COMPARISONS:
            c = rec.get("differences", {}).get(key)
            if not c or c["verdict"] not in ("better", "worse", "no clear difference") or len(c["ci95"]) != 2:
                out.append(f"fill {kind}: comparison {key} missing or without interval and verdict")
        for curve in ("top", "first", "bottom", "random"):
            if curve not in rec.get("sufficient_n_ci95", {}):
                out.append(f"fill {kind}: no interval for the sufficient n of {curve}")
    methods = {s["method"] for s in m.get("randomisation", {}).get("steps", [])}
    if methods != {"LIME", "Grad-CAM"}:
        out.append(f"randomisation covers {sorted(methods)}, not LIME and Grad-CAM")
    for key in ("stability", "deletion_insertion", "ground_truth_statement", "fills_statement"):
        if not m.get(key):
            out.append(f"metrics.json has no {key}")
    return out
