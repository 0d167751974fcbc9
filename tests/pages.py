"""What a reader sees on the built pages: their text, and the noise and machine paths that must not be there."""

from __future__ import annotations

import html
import json
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
    return text_of_html(page.read_text(encoding="utf-8", errors="replace"))


def text_of_html(raw: str) -> str:
    """The visible text of a piece of HTML, whitespace squeezed."""
    raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"(?s)<[^>]+>", " ", raw)))


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


# --------------------------------------------------------------------------- what a reader reads on a page

#: A missing value or a piece of Python a reader must never see in a page's prose, tables or printed output.
RAW = {
    "NaN": re.compile(r"\b(?:nan|NaN|NAN|NaT|<NA>)\b"),
    # the English "None is ..." / "None of ..." starts a sentence; a None repr does not go on like that
    "None": re.compile(r"(?<!\(\s)(?<!\()\bNone\b(?!\s+(?:is|of|was|were|are|has|have|could|can|needs?)\b)"),
    "numpy repr": re.compile(r"\bnp\.\w+|\barray\(|\bdtype\s*="),
    "dict or list repr": re.compile(r"\{'|\['|\{\"\w+\":|\[\(|\(\{"),
    "object repr": re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>|\b\w+\([a-z_]+=[^)]*\)"),
}
#: Table cells that hold nothing for a reader.
EMPTY_CELLS = {"", "–", "—", "-", "nan", "NaN", "None", "n/a"}
#: Plotly traces that are drawn without cartesian axes.
AXISLESS = {"pie", "image", "table", "indicator", "sunburst", "treemap", "sankey", "parcoords", "funnelarea"}


def _soup(page: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(Path(page).read_text(encoding="utf-8", errors="replace"), "html.parser")


def _main(soup):
    return soup.find("main") or soup.find("article") or soup


def reader_text(page: Path) -> str:
    """The prose, tables and printed output of a page's article: code a reader reads as code (the cells' input,
    listings, inline code) left out."""
    main = _main(_soup(page))
    for tag in main.find_all(["script", "style"]):
        tag.decompose()
    for tag in main.select("div.cell_input, div.highlight-python, div.highlight-ipython3, div.highlight-default, "
                           "code"):
        tag.decompose()
    for tag in main.select("a.headerlink"):
        tag.decompose()
    return html.unescape(main.get_text(" "))


def raw_values(page: Path) -> list[str]:
    """Each NaN, None or Python repr a reader would see on ``page``, with its context."""
    text = re.sub(r"\s+", " ", reader_text(page))
    return [f"{label}: {text[max(0, m.start() - 60):m.end() + 40]!r}"
            for label, pattern in RAW.items() for m in pattern.finditer(text)]


def _has_content(node) -> bool:
    if getattr(node, "name", None) is None:
        return bool(str(node).strip())
    if node.name in ("img", "svg", "table", "figure", "iframe") or node.get_text(strip=True):
        return True
    return node.find(["img", "svg", "table", "figure", "iframe"]) is not None or \
        node.find(class_="plotly-graph-div") is not None


def empty_sections(page: Path) -> list[str]:
    """Sections headed for data that is absent: a heading with nothing under it, a table column with no value."""
    main = _main(_soup(page))
    out = []
    for section in main.find_all("section"):
        heading = section.find(re.compile(r"^h[1-6]$"))
        title = heading.get_text(" ", strip=True).removesuffix("#").strip() if heading else section.get("id", "?")
        if not any(_has_content(c) for c in section.children if c is not heading):
            out.append(f"section {title!r} has nothing under its heading")
    for table in main.find_all("table"):
        out += [f"table {problem}" for problem in _empty_columns(table)]
    return out


def _empty_columns(table) -> list[str]:
    """A table with no row, or a named column with no value in any row (columns aligned from the right, as
    pandas spans its index cells over rows)."""
    rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])]
            for tr in (table.find("tbody") or table).find_all("tr")]
    heads = [[c.get_text(" ", strip=True) for c in tr.find_all("th")]
             for tr in (table.find("thead").find_all("tr") if table.find("thead") else [])]
    if not rows:
        return [f"{[h for r in heads for h in r if h][:4]} has no rows"]
    out = []
    for k in range(1, max(len(r) for r in rows) + 1):
        name = " ".join(h[-k] for h in heads if len(h) >= k and h[-k])
        column = [r[-k] for r in rows if len(r) >= k]
        if name and all(v in EMPTY_CELLS for v in column):
            out.append(f"column {name!r} holds no value in any row")
    return out


def _plotly_figures(page: Path) -> list[tuple[list, dict]]:
    """(traces, layout) of every plotly figure drawn on the page, read from its ``Plotly.newPlot`` call."""
    raw = Path(page).read_text(encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    figures = []
    for m in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", raw):
        data, end = decoder.raw_decode(raw, m.end())
        rest = re.match(r"\s*,\s*", raw[end:])
        layout, _ = decoder.raw_decode(raw, end + rest.end()) if rest else ({}, end)
        figures.append((data, layout))
    return figures


def _has_values(trace: dict) -> bool:
    for key in ("x", "y", "z", "values", "source", "r", "lat", "cells"):
        v = trace.get(key)
        if isinstance(v, dict) and v.get("bdata"):
            return True
        if isinstance(v, (list, str)) and len(v) > 0:
            return True
    return False


def _axis_title(axis: dict) -> str:
    title = axis.get("title")
    return (title.get("text") if isinstance(title, dict) else title) or ""


def figure_problems(page: Path) -> list[str]:
    """Plotly figures on ``page`` without data, or with visible cartesian axes none of which carries a title."""
    out = []
    for i, (traces, layout) in enumerate(_plotly_figures(page), start=1):
        name = (_axis_title(layout) or f"figure {i}")[:60]
        if not traces or not any(_has_values(t) for t in traces):
            out.append(f"{name!r} has no data")
            continue
        for letter in ("x", "y"):
            used = {t.get(f"{letter}axis", letter) for t in traces if t.get("type", "scatter") not in AXISLESS}
            axes = [layout.get(f"{letter}axis{a[1:]}", {}) for a in used]
            shown = [a for a in axes if a.get("visible", True)]
            if shown and not any(_axis_title(a) for a in shown):
                out.append(f"{name!r} has no title on its {letter} axis")
    return out


def reader_problems(html_dir: Path) -> list[str]:
    """Every raw value, empty section and figure without data or axis titles on the pages of a built book."""
    found = []
    for page in pages(html_dir):
        if page.name == "index.html" and "notebooks" not in page.parts and page.stat().st_size < 2000:
            continue  # the redirect to the first page
        name = page.relative_to(html_dir)
        found += [f"{name}: {p}" for p in raw_values(page) + empty_sections(page) + figure_problems(page)]
    return found
