"""The architecture, checked from the source: module size, import cycles, the package root, the one-way import
direction between subpackages, the subpackages' docstrings, and that importing a module does no heavy work.

Imports are read with ``ast`` from every ``import`` statement in a file: at module level, inside functions and under
``if TYPE_CHECKING:`` alike, since each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("res2net", "dashboard")
MAX_LINES = 700
MIN_SUBPACKAGES = 4

# The one-way direction: a res2net subpackage may import itself and the subpackages listed here, nothing else in
# res2net. models -> geometry -> analysis / metrics / data -> evaluation / viz (siblings never import each other).
ALLOWED = {
    "models": set(),
    "geometry": {"models"},
    "analysis": {"models", "geometry"},
    "metrics": {"models", "geometry"},
    "data": {"models", "geometry"},
    "evaluation": {"models", "geometry", "analysis", "metrics", "data"},
    "viz": {"models", "geometry", "analysis", "metrics", "data"},
}
# `python -m` entry points and the notebook root: they may import any module of res2net.
ENTRY_POINTS = {"res2net", "res2net.train", "res2net.evaluate"}
# Third-party packages that belong to the app only.
APP_ONLY = {"dashboard", "streamlit"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    """{dotted module name: file} for every module of the res2net and dashboard packages."""
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


SOURCES = _sources()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module ``name`` imports, as (dotted name, line), resolving relative imports; ``from pkg import x``
    names ``pkg.x`` when that is a module of ours, else ``pkg``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((sub if sub in SOURCES else mod, node.lineno))
    return sorted(set(out), key=lambda e: (e[1], e[0]))


IMPORTS = {name: _imports(name, path) for name, path in SOURCES.items()}


def _where(name: str, line: int) -> str:
    return f"{SOURCES[name].relative_to(REPO)}:{line}"


def _subpackage(name: str) -> str | None:
    """The res2net subpackage a module belongs to (None for the root and the entry points)."""
    parts = name.split(".")
    return parts[1] if parts[0] == "res2net" and len(parts) > 1 and parts[1] in ALLOWED else None


def test_the_tree_is_where_this_test_looks() -> None:
    """Guards the rules below against passing on an empty or misread tree."""
    assert "res2net.models.zoo" in SOURCES and "dashboard.app" in SOURCES
    assert ("res2net.models.zoo", 1) not in IMPORTS["res2net.models.zoo"]
    assert any(m == "res2net.models.zoo" for m, _ in IMPORTS["res2net"]), "the root's re-exports were not read"


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in SOURCES.values()}
    over = {f: n for f, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module that imports itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = {name: {m for m, _ in IMPORTS[name] if m in SOURCES and m != name} for name in SOURCES}
    cycles = _cycles(graph)
    detail = []
    for comp in cycles:
        members = set(comp)
        edges = [f"{a} -> {m} ({_where(a, line)})" for a in comp for m, line in IMPORTS[a] if m in members and m != a]
        detail.append("; ".join(edges))
    assert not cycles, "modules that import each other (directly or round a loop):\n" + "\n".join(detail)


def test_nothing_inside_res2net_imports_the_package_root() -> None:
    bad = [f"{_where(name, line)} imports the package root"
           for name in SOURCES if name.startswith("res2net.") for m, line in IMPORTS[name] if m == "res2net"]
    assert not bad, "\n".join(bad) + "\nimport the defining module instead (from res2net.models.zoo import get_spec)"


def test_res2net_never_imports_the_app() -> None:
    bad = [f"{_where(name, line)} imports {m}" for name in SOURCES if name.split(".")[0] == "res2net"
           for m, line in IMPORTS[name] if m.split(".")[0] in APP_ONLY]
    assert not bad, "\n".join(bad)


def test_imports_run_one_way_between_subpackages() -> None:
    bad = []
    for name in SOURCES:
        own = _subpackage(name)
        if own is None:
            continue
        for m, line in IMPORTS[name]:
            if m.split(".")[0] != "res2net":
                continue
            target = _subpackage(m)
            if target == own:
                continue
            if target is None or target not in ALLOWED[own]:
                bad.append(f"{_where(name, line)}: res2net.{own} imports {m}")
    allowed = "\n".join(f"  {k}: {', '.join(sorted(v)) or '(nothing else in res2net)'}" for k, v in ALLOWED.items())
    assert not bad, "imports against the direction:\n" + "\n".join(bad) + f"\nallowed:\n{allowed}"


def test_every_module_is_placed_in_the_direction() -> None:
    """A new top-level module in res2net is either a subpackage of the table or a declared entry point."""
    loose = [n for n in SOURCES if n.split(".")[0] == "res2net" and _subpackage(n) is None and n not in ENTRY_POINTS]
    assert not loose, f"res2net modules outside every subpackage: {loose}"


def test_res2net_has_documented_subpackages() -> None:
    subs = sorted(p.parent for p in (REPO / "res2net").glob("*/__init__.py"))
    assert len(subs) >= MIN_SUBPACKAGES, [s.name for s in subs]
    assert {s.name for s in subs} == set(ALLOWED), "the direction table and the subpackages differ"
    for s in subs:
        doc = ast.get_docstring(ast.parse((s / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 5, f"res2net.{s.name} needs a docstring saying what it owns"
        assert "import" in doc.lower(), f"res2net.{s.name}'s docstring should say what it may import"


# Run in a fresh interpreter: the functions that build models, read datasets or fetch files are watched from before the
# first res2net import, then every module of the package is imported. A profile hook sees calls by function name
# (so a module-level ``get_spec(...)`` is caught even in the module that defines it).
IMPORT_PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys, urllib.request
    import numpy as np, torch
    from PIL import Image

    HEAVY_RES2NET = {"get_spec", "create_model", "model_info", "load_split", "load_pretrained", "load_checkpoint_file",
                     "load_state_dict_file", "load_image", "demo_images", "load_results", "load_image_scores",
                     "download", "build_layout", "run", "run_dataset"}
    seen = []
    importing = []

    def importer():
        f = sys._getframe(2)
        while f is not None:
            if f.f_code.co_name == "<module>" and "/res2net/" in f.f_code.co_filename:
                return f.f_code.co_filename.split("/res2net/", 1)[1]
            f = f.f_back
        return "?"

    def profile(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_name in HEAVY_RES2NET and "/res2net/" in code.co_filename:
            seen.append((importer(), code.co_name))

    def watch(owner, attr, label):
        orig = getattr(owner, attr)
        def wrapped(*a, **k):
            seen.append((importer(), label))
            return orig(*a, **k)
        setattr(owner, attr, wrapped)

    module_init = torch.nn.Module.__init__
    def counting_init(self, *a, **k):
        seen.append((importer(), "builds " + type(self).__name__))
        module_init(self, *a, **k)
    torch.nn.Module.__init__ = counting_init
    watch(torch, "load", "torch.load"); watch(np, "load", "np.load"); watch(Image, "open", "Image.open")
    watch(urllib.request, "urlopen", "urlopen")

    sys.setprofile(profile)
    import res2net
    names = ["res2net"] + [m.name for m in pkgutil.walk_packages(res2net.__path__, "res2net.")]
    for name in names:
        importlib.import_module(name)
    sys.setprofile(None)
    print(json.dumps({"modules": names, "heavy": seen,
                      "app": sorted(m for m in sys.modules if m.split(".")[0] in ("streamlit", "dashboard"))}))
""")


@pytest.fixture(scope="module")
def import_probe() -> dict:
    r = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_res2net_does_no_heavy_work(import_probe: dict) -> None:
    assert len(import_probe["modules"]) == sum(n.split(".")[0] == "res2net" for n in SOURCES)
    heavy = sorted({f"res2net/{where}: {what}" for where, what in import_probe["heavy"]})
    assert not heavy, "work done at import time (do it on first use instead):\n" + "\n".join(heavy)


def test_importing_res2net_loads_no_app_code(import_probe: dict) -> None:
    assert not import_probe["app"], import_probe["app"]


def test_the_import_probe_sees_heavy_work(tmp_path: Path) -> None:
    """The probe's watchers fire on a module that builds a model and reads a spec at import."""
    pkg = tmp_path / "res2net"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "zoo.py").write_text("def get_spec(name):\n    return name\n")
    (pkg / "models" / "eager.py").write_text(
        "import torch\nfrom res2net.models.zoo import get_spec\nSPEC = get_spec('x')\nNET = torch.nn.Linear(2, 2)\n")
    r = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    heavy = {tuple(x) for x in json.loads(r.stdout.strip().splitlines()[-1])["heavy"]}
    assert ("models/eager.py", "get_spec") in heavy and ("models/eager.py", "builds Linear") in heavy
