"""Generate the hook reference (``docs/hooks.md``) from the hook specifications.

    python -m harness.hookdocs > docs/hooks.md

A test fails when the file is out of date or a hook lacks a docstring.
"""

from __future__ import annotations

import inspect

from harness import hookspecs


def hook_names() -> list[str]:
    """Names of every hook in :mod:`harness.hookspecs`, in source order."""
    return [name for name, f in vars(hookspecs).items() if name.startswith("harness_") and inspect.isfunction(f)]


def render() -> str:
    """The Markdown hook reference."""
    lines = [
        "# Hook reference",
        "",
        "Generated from `harness/hookspecs.py` by `python -m harness.hookdocs`; do not edit by hand.",
        "Implement any of these in a module registered under the `harness.plugins` entry-point group,",
        "each marked with `@harness.hookimpl`.",
        "",
    ]
    for name in hook_names():
        function = getattr(hookspecs, name)
        signature = inspect.signature(function)
        doc = inspect.cleandoc(function.__doc__ or "")
        lines += [f"## `{name}{signature}`", "", doc, ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
