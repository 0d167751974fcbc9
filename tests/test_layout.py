"""The package's shape: stages as folders, no private names across modules, notebooks as short named steps."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "cytokit"
STAGES = ("data", "models", "evaluation", "xai", "book", "pages")
#: Modules that serve every stage and so sit at the top of the package.
SHARED = {"__init__.py", "arguments.py", "cli.py", "io.py", "native.py", "paths.py", "progress.py"}
#: Third-party imports that load TensorFlow: a cytokit module importing one is "heavy".
HEAVY = ("tensorflow", "keras", "keras_tuner")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_CELL_LINES = 12


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = modules()


def imports(tree: ast.AST, top_level: bool):
    """(node, imported module names) for the imports at module level, or inside functions."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)) and inside != top_level:
                yield child
            yield from walk(child, inside)
    yield from walk(tree, False)


def targets(node) -> list[str]:
    """The modules an import statement loads (``from a import b`` loads ``a.b`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def test_the_package_is_laid_out_by_stage():
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), f"cytokit/{stage} is not a subpackage"
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in SHARED)
    assert loose == [], f"modules outside the stage folders: {loose}"


def stage_of(module: str) -> str | None:
    """``cytokit.<stage>.…`` -> stage; shared top-level modules have none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else None


def test_stages_form_a_stack_and_the_pages_sit_on_the_machinery():
    """A stage imports only itself and the stages before it: the pages use the book's machinery, never the reverse."""
    rank = {stage: i for i, stage in enumerate(STAGES)}
    upward = []
    for name, path in MODULES.items():
        here = stage_of(name) if name.count(".") > 1 else None
        if here is None:
            continue
        for node in imports(ast.parse(path.read_text(encoding="utf-8")), top_level=True):
            for t in targets(node):
                there = stage_of(t) if t.startswith("cytokit.") and t.count(".") > 1 else (
                    t.split(".")[1] if t.startswith("cytokit.") and t.split(".")[1] in STAGES else None)
                if there and rank[there] > rank[here]:
                    upward.append(f"{name} imports {t}")
    assert upward == [], "imports that climb the stack:\n" + "\n".join(upward)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_private_names(name):
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    offences = []
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cytokit"):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    offences.append(f"line {node.lineno}: from {node.module} import {a.name}")
                if f"{node.module}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("cytokit") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            offences.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert offences == [], f"{name} reaches into private names of other modules: {offences}"


def heavy_modules() -> set[str]:
    """cytokit modules whose import loads TensorFlow, directly or through another cytokit module."""
    edges, heavy = {}, set()
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loaded = [t for node in imports(tree, top_level=True) for t in targets(node)]
        if any(t.split(".")[0] in HEAVY for t in loaded):
            heavy.add(name)
        edges[name] = [t for t in loaded if t in MODULES]
    changed = True
    while changed:
        changed = False
        for name, deps in edges.items():
            if name not in heavy and any(d in heavy for d in deps):
                heavy.add(name)
                changed = True
    return heavy


def test_function_level_imports_of_cytokit_are_only_for_tensorflows_cost():
    heavy = heavy_modules()
    assert {"cytokit.data.pipeline", "cytokit.models.network"} <= heavy
    assert "cytokit.data" not in heavy and "cytokit.book.chapter" not in heavy
    light = []
    for name, path in MODULES.items():
        for node in imports(ast.parse(path.read_text(encoding="utf-8")), top_level=False):
            light += [f"{name}:{node.lineno} imports {t}" for t in targets(node)
                      if t.startswith("cytokit") and t not in heavy]
    assert light == [], "function-level imports of modules that do not load TensorFlow (import them at the top):\n" \
        + "\n".join(light)


def code_cells(notebook: Path):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_are_short_named_steps(notebook):
    problems, modules_ = [], set()
    for i, cell in code_cells(notebook):
        source = "".join(cell["source"])
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules_ |= {(a.asname or a.name).split(".")[0] for a in node.names}
        lines = source.strip().splitlines()
        is_parameter_list = "parameters" in cell["metadata"].get("tags", [])  # one line per parameter, no steps
        if len(lines) > MAX_CELL_LINES and not is_parameter_list:
            problems.append(f"cell {i}: {len(lines)} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.For, ast.While, ast.FunctionDef, ast.ClassDef, ast.Try, ast.With,
                                 ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp, ast.If)):
                problems.append(f"cell {i}, line {node.lineno}: {type(node).__name__} (belongs in cytokit)")
            if isinstance(node, ast.Attribute) and node.attr in ("split", "replace", "partition", "join", "strip") \
                    and not (isinstance(node.value, ast.Name) and node.value.id in modules_):
                problems.append(f"cell {i}, line {node.lineno}: string surgery .{node.attr}()")
    assert problems == [], f"{notebook.name}: {problems}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_plumbing_is_hidden_and_parameters_are_shown(notebook):
    cells = code_cells(notebook)
    first = cells[0][1]
    assert "parameters" in first["metadata"].get("tags", []), "the first code cell must be the parameters cell"
    assert not {"remove-cell", "remove-input"} & set(first["metadata"].get("tags", []))
    plumbing = ("chapter.record", "chapter.keep", "save_metrics", "glue(", "Chapter(", "import ")
    shown = []
    for i, cell in cells[1:]:
        source = "".join(cell["source"])
        hidden = {"remove-cell", "remove-input"} & set(cell["metadata"].get("tags", []))
        if any(p in source for p in plumbing) and not hidden:
            shown.append(i)
    assert shown == [], f"{notebook.name}: cells {shown} record, glue, import or set up paths but are shown"
