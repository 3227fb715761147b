"""``harness new-plugin NAME``: write a ready plugin package that passes the conformance suite."""

from __future__ import annotations

import re
from pathlib import Path

from harness import HarnessError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "harness-{dist}"
version = "0.1.0"
description = "harness plugin: the {name} detector."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["adharness>=0.1", "numpy"]

[project.optional-dependencies]
test = ["pytest"]

[project.entry-points."harness.plugins"]
{name} = "{module}"

[tool.setuptools]
packages = ["{module}"]
"""

MODULE = '''"""harness plugin: the ``{name}`` detector.

Replace the statistics below with your method; keep the contract: ``fit(samples)`` sees
defect-free images only (``sample.image`` is H x W x 3 uint8, ``sample.path`` its file), and
``score(samples)`` returns ``harness.Scores(image=[N], maps=[N, H, W] or None)``, higher meaning
more anomalous. Declare every constructor argument in the options model: ``harness validate``
then refuses an unknown option or a wrong-typed value before anything is fitted. Run ``pytest`` to
check it against the harness conformance suite.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import harness
from harness.analysis import Float, OptionsModel

__version__ = "0.1.0"


class {cls}Options(OptionsModel):
    """The options a protocol may give ``{name}``: the constructor's arguments and defaults."""

    epsilon: Float = Field(2.0, gt=0, description="added to each pixel's spread so that z-scores stay finite")


class {cls}:
    """Per-pixel median and spread of the normal images; the map is the largest robust z-score."""

    weights = "none (no pretrained backbone)"

    def __init__(self, epsilon: float = 2.0) -> None:
        self.epsilon = epsilon

    def fit(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        self.median = np.median(images, axis=0)
        self.spread = np.median(np.abs(images - self.median), axis=0) + self.epsilon
        return self

    def score(self, samples):
        images = np.stack([s.image for s in samples]).astype(np.float32)
        maps = (np.abs(images - self.median) / self.spread).max(axis=-1)
        return harness.Scores(image=maps.reshape(len(samples), -1).max(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    """Register the detector under its protocol name, with its options model."""
    return {{
        "{name}": harness.ModelSpec(
            {cls},
            options={cls}Options,
            description="per-pixel median and spread of normal images; the map is the largest robust z-score",
        )
    }}
'''

TEST = """from harness.testing import parametrize_checks

from {module} import {cls}


@parametrize_checks("{name}", {cls})
def test_{name}_conforms(check):
    check()
"""

README = """# harness-{dist}

A [harness](https://pypi.org/project/harness/) plugin that registers the `{name}` detector.

    pip install -e .          # then `harness plugins` lists "{name}"
    pytest                    # the harness conformance suite

Use it in a protocol:

```yaml
models:
  - name: {name}
    options: {{epsilon: 2.0}}
```

Publish: `python -m build` and upload the wheel; users `pip install harness-{dist}`.
"""


def new_plugin(name: str, parent: Path) -> Path:
    """Write the package ``harness-NAME`` under ``parent`` and return its folder."""
    if not NAME_PATTERN.match(name):
        raise HarnessError(f"plugin name {name!r} must be lower case letters, digits and _ (e.g. my_detector)")
    dist = name.replace("_", "-")
    module = f"harness_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) or "Detector"
    target = parent / f"harness-{dist}"
    if target.exists():
        raise HarnessError(f"{target} already exists; choose another name or --dir")
    values = {"name": name, "dist": dist, "module": module, "cls": cls}
    files = {
        "pyproject.toml": PYPROJECT,
        f"{module}/__init__.py": MODULE,
        f"tests/test_{name}.py": TEST,
        "README.md": README,
    }
    try:
        for relative, template in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values))
    except OSError as exc:
        raise HarnessError(f"cannot write {target}: {exc.strerror or exc}; choose another --dir") from None
    return target
