"""The package's import structure: the vocabulary at the bottom, a lazy public API, no import cycles."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import cxsim

PACKAGE = Path(cxsim.__file__).parent


def fresh(code: str, env=None) -> list[str]:
    """Run `code` in a fresh interpreter; its printed lines."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.split()


def test_the_scenario_loader_imports_neither_numba_nor_mesa():
    assert fresh("import cxsim.scenario, sys; print('numba' in sys.modules, 'mesa' in sys.modules)") == [
        "False",
        "False",
    ]


def test_cxsim_check_imports_neither_numba_nor_mesa():
    code = (
        "import sys; from cxsim.cli import main; code = main(['check', 'base']); "
        "print(code, 'numba' in sys.modules, 'mesa' in sys.modules)"
    )
    assert fresh(code)[-3:] == ["0", "False", "False"]


def test_the_public_api_is_there_on_first_use():
    from cxsim import Comparison, CXModel, Results, ScenarioError, compare, load_scenario, run  # noqa: F401

    assert sorted(cxsim.__all__) == sorted(
        ["CXModel", "Comparison", "Results", "ScenarioError", "compare", "load_scenario", "run"]
    )
    assert set(cxsim.__all__) <= set(dir(cxsim))


def test_numba_is_configured_before_it_is_imported():
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_INTEL_SVML", "OMP_WAIT_POLICY")}
    code = (
        "import os; from cxsim import CXModel; from numba.core import config; "
        "print(int(config.DISABLE_INTEL_SVML), os.environ['OMP_WAIT_POLICY'])"
    )
    assert fresh(code, env) == ["1", "passive"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The cxsim modules `path` imports when it is imported (imports inside functions do not count)."""
    found = set()
    todo = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module_name(path).split(".")
                package = package[: len(package) - node.level + (path.name == "__init__.py")]
                base = ".".join([*package, *([node.module] if node.module else [])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        todo.extend(ast.iter_child_nodes(node))
    return found & modules


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of modules, or None."""
    state: dict[str, str] = {}

    def visit(node, path):  # path: the open modules, ending with node
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    return next((c for node in sorted(graph) if node not in state and (c := visit(node, [node]))), None)


def test_module_level_imports_have_no_cycle():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: module_level_imports(path, set(files)) - {name} for name, path in files.items()}
    assert graph["cxsim.plots"] >= {"cxsim.stats", "cxsim.sweepstore"}  # the parser sees imports
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_vocabulary_is_at_the_bottom():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    imports = {name: module_level_imports(path, set(files)) for name, path in files.items()}
    vocabulary = {"cxsim.domain", "cxsim.presets", "cxsim.kpis"}
    assert all(imports[name] <= {"cxsim.domain"} for name in vocabulary)
    assert imports["cxsim.schema"] <= vocabulary
    assert not any("cxsim.kernel" in imports[name] for name in ("cxsim.schema", "cxsim.scenario", "cxsim.cli"))
