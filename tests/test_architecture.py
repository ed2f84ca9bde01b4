"""The layer table of docs/architecture.md holds for the code: no module imports a higher layer at import
time, every module is in the table, package ``__init__`` files only re-export, and modules stay readable."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
MAX_LINES = 460  # "no module over ~450 lines"

#: Upward imports made inside a function (at call time, not import time), each a deliberate plug-in point.
LAZY_UPWARD = {
    ("jaxirm.checkpoint", "jaxirm.experiments"),  # solver_of: rebuild a registered experiment's method
    ("jaxirm.selection._configs", "jaxirm.loops"),  # leave_one_env_out: one sweep per held-out env
    ("jaxirm.experiments._run", "jaxirm.plotting"),  # the optional plot of a reproduction
    ("jaxirm.experiments.sem", "jaxirm.plotting"),
}


def _layers() -> list[tuple[str, list[str]]]:
    """(layer, [module prefixes]) from the page's table, lowest layer first."""
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \| ([^|]+) \|", PAGE.read_text(), flags=re.M)
    assert rows, "docs/architecture.md has no layer table"
    return [(name.strip(), re.findall(r"`(jaxirm[\w.]*)`", mods)) for _, name, mods in rows]


def _layer_of(module: str, layers) -> int | None:
    best = None
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def _modules():
    for path in sorted((ROOT / "jaxirm").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text())


def _imports(tree: ast.Module):
    """(imported module, lineno, at module level?) for every absolute jaxirm import."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("jaxirm"):
                yield name, node.lineno, id(node) in top


def test_every_module_is_in_the_layer_table():
    layers = _layers()
    missing = [name for name, _, _ in _modules() if name != "jaxirm" and _layer_of(name, layers) is None]
    assert not missing, f"add these modules to the layer table of docs/architecture.md: {missing}"


def test_no_module_imports_a_higher_layer():
    layers = _layers()
    bad, lazy = [], set()
    for name, _, tree in _modules():
        mine = _layer_of(name, layers)
        if mine is None:
            continue
        for target, line, top in _imports(tree):
            theirs = _layer_of(target, layers)
            if theirs is None or theirs <= mine:
                continue
            pair = (name, ".".join(target.split(".")[:2]) if target.count(".") else target)
            if not top and any(name == a and target.startswith(b) for a, b in LAZY_UPWARD):
                lazy.add((name, next(b for a, b in LAZY_UPWARD if a == name and target.startswith(b))))
                continue
            bad.append(f"{name}:{line} ({layers[mine][0]}) imports {target} ({layers[theirs][0]}) {pair}")
    assert not bad, "\n".join(bad)
    assert lazy == LAZY_UPWARD, f"stale entries in LAZY_UPWARD: {LAZY_UPWARD - lazy}"


def test_package_inits_only_reexport():
    for name, path, tree in _modules():
        if path.name != "__init__.py":
            continue
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        defs = [n.name for n in tree.body if isinstance(n, kinds)]
        assert not defs, f"{name}/__init__.py defines {defs}: move them to a module and re-export them"


def test_modules_stay_readable():
    long = {
        str(path.relative_to(ROOT)): n
        for _, path, _ in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
