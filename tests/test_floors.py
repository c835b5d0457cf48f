"""The floors of the house, read from the source: `core` imports nothing of ours, `model` only `core`,
`streaming` and `training` only what is below them, and no module of ours imports another's private name.
Imports inside functions count as much as those at the top."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("core", "model", "streaming", "training", "tools")
BELOW = {"core": set(), "model": {"core"}, "streaming": {"core", "model"}, "training": {"core", "model"},
         "tools": {"core", "model", "streaming", "training"}}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) of every import in the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def _modules():
    for pkg in OURS:
        yield from ((pkg, p) for p in sorted((ROOT / pkg).rglob("*.py")))


def test_each_package_imports_only_the_floors_below_it():
    wrong = []
    for pkg, path in _modules():
        for module, _, line in _imports(path):
            top = module.split(".")[0]
            if top in OURS and top != pkg and top not in BELOW[pkg]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_private_name():
    wrong = []
    for _, path in _modules():
        for module, names, line in _imports(path):
            if module.split(".")[0] in OURS:
                wrong += [f"{path.relative_to(ROOT)}:{line} imports {module}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


def test_no_function_over_100_lines_in_streaming_tools_or_core():
    """Short functions (issue 22's target): a run reads as settings -> plan -> build -> host, not one long body."""
    long = []
    for package in ("streaming", "tools", "core"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
