"""The package's layout is its design: three parts, imports that only go down, no cycle.

- what the chapters teach (the top-level modules, `grading/`, `widgets/`) never imports the
  instructor's pipeline (`autograding/`);
- only `ops` uses the private engine (`_engine/`), and the engine imports nothing above it;
- nothing imports the command line (`cli`): it sits on top;
- the chapters import neither the pipeline nor the engine;
- the import graph of conv_course has no cycle.
Imports inside functions count too: a cycle through a function is still a cycle.
"""

import ast
import pathlib
import re

from conv_course import PACKAGE_DIR, REPO_ROOT

PACKAGE = pathlib.Path(PACKAGE_DIR)


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _targets(name, path, node, mods):
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        names = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
    for target in names:
        while target and target not in mods and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in mods and target not in (name, "conv_course"):
            yield target


def import_graph():
    mods = _modules()
    graph = {name: set() for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(_targets(name, path, node, mods))
    return graph


def _part(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("autograding", "_engine") else "course"


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = import_graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_course_never_imports_the_grading_pipeline():
    bad = [(a, b) for a, targets in import_graph().items() for b in targets
           if _part(a) == "course" and _part(b) == "autograding" and a != "conv_course.cli"]
    assert bad == []


def test_only_ops_uses_the_engine_and_the_engine_imports_nothing_above_it():
    graph = import_graph()
    users = sorted({a for a, targets in graph.items() for b in targets if _part(b) == "_engine" and _part(a) != "_engine"})
    assert users == ["conv_course.ops"]
    above = [(a, b) for a, targets in graph.items() if _part(a) == "_engine" for b in targets
             if _part(b) != "_engine" and b != "conv_course._checks"]
    assert above == []


def test_nothing_imports_the_command_line():
    assert [a for a, targets in import_graph().items() if "conv_course.cli" in targets] == []


def test_chapters_import_neither_the_pipeline_nor_the_engine():
    pattern = re.compile(r"^\s*(?:from|import)\s+conv_course\.(?:autograding|_engine)\b", re.M)
    chapters = sorted(pathlib.Path(REPO_ROOT, "book").glob("[0-9][0-9]-*/*.md"))
    assert chapters and [str(p) for p in chapters if pattern.search(p.read_text(encoding="utf-8"))] == []


def test_the_layout_checks_see_real_imports():
    """The graph is not vacuous: known edges are found (a relative, an absolute, a function-level import)."""
    graph = import_graph()
    assert "conv_course._engine.gemm" in graph["conv_course.ops"]
    assert "conv_course.autograding.sandbox" in graph["conv_course.autograding.sandbox_kernel"]
    assert "conv_course.autograding.sandbox_kernel" in graph["conv_course.autograding.execution"]
