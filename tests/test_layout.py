"""The shape of the code: no import circle, the layers import downwards only, the cache format needs no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("data", "teacher_cache", "student")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports anywhere in its body (late imports included)."""
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    files += [ROOT / "cli.py", ROOT / "demo.py"]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            found = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            targets |= {t for t in found if t in modules and t != name}
        graph[name] = targets
    return graph


def test_no_two_modules_import_each_other_directly_or_around_a_loop():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                loop = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(loop))
            if state.get(target) is None:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_layers_import_downwards():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("data"):
            assert all(t.startswith("data") for t in targets), (module, targets)
        if module.startswith("teacher_cache") and not module.startswith("teacher_cache.teachers"):
            assert all(t.startswith(("data", "teacher_cache")) and not t.startswith("teacher_cache.teachers")
                       for t in targets), (module, targets)
        if module.startswith("student"):
            assert not any(t.startswith("teacher_cache.teachers") for t in targets), (module, targets)
        if module.startswith("teacher_cache"):  # teachers and format alike sit below the student
            assert not any(t.startswith("student") for t in targets), (module, targets)
    assert "teacher_cache.writer" not in graph["teacher_cache.reader"]


def test_only_the_runner_imports_fair_esm():
    importers = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                 if any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                        any(a.name == "esm" or a.name.startswith("esm.") for a in getattr(n, "names", []))
                        or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "esm"
                        for n in ast.walk(ast.parse(p.read_text())))]
    assert [p.relative_to(ROOT).as_posix() for p in importers] == ["teacher_cache/teachers/esm_runner.py"]


def test_the_cache_format_imports_without_torch():
    code = ("import sys, teacher_cache, teacher_cache.verify, teacher_cache.merge, teacher_cache.lock; "
            "bad = [m for m in ('torch', 'esm') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
