"""The core's shape, as the project asks it: no function over 60 lines, a runner that only sequences."""

import ast
from pathlib import Path

import harness

CORE = Path(harness.__file__).parent
LONGEST = 60


def test_no_function_in_the_core_is_longer_than_60_lines():
    long = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST:
                    long.append(f"{path.relative_to(CORE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these functions: " + "; ".join(long)


def test_the_runner_only_holds_the_pipeline():
    lines = (CORE / "runner.py").read_text().count("\n")
    assert lines < 250, f"runner.py has {lines} lines; move steps into the modules named for them"
