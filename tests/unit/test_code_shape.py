"""The core's shape, as the project asks it: no function over 60 lines, a runner that only sequences, a small core."""

import ast
from pathlib import Path

import harness

CORE = Path(harness.__file__).parent
LONGEST = 60
CODE_LINE_BUDGET = 6_536  # +30 since 6,506: module forwarders, a dead job's hand-over folder, validate_options
"""Code lines (no blank, comment or docstring lines) the core may hold; extensions go to plugins/."""


def code_lines(source: str) -> int:
    """Lines of ``source`` that hold code: not blank, not only a comment, not part of a docstring.

    A docstring is any statement that is a bare string (module, class and function docstrings and
    the attribute docstrings below assignments), found with ``ast``.
    """
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docstrings.update(range(node.lineno, node.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


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


def test_the_core_stays_within_its_code_line_budget():
    per_file = {path.relative_to(CORE).as_posix(): code_lines(path.read_text()) for path in CORE.rglob("*.py")}
    total = sum(per_file.values())
    largest = ", ".join(f"{name} {n}" for name, n in sorted(per_file.items(), key=lambda item: -item[1])[:5])
    assert total <= CODE_LINE_BUDGET, (
        f"the core has {total} code lines (budget {CODE_LINE_BUDGET}); move an extension into an in-house "
        f"plugin under plugins/ (largest: {largest})"
    )


def test_code_lines_skip_blanks_comments_and_docstrings():
    source = (
        '"""Module."""\n\n# note\nX = 1\n"""X\'s doc."""\n\n\ndef f():\n    """Doc\n    more."""\n    return X  # ok\n'
    )
    assert code_lines(source) == 3
