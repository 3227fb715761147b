"""What the paradigm kinds keep in the derived cache beside the scores: the hash of the code that computes it."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from importlib import metadata
from pathlib import Path


@functools.cache
def source_digest(*modules: str) -> str:
    """A sha256 of the source of ``modules`` (found without importing them) and the numpy and pandas versions.

    Part of the key of every stored value or figure (``JobData.remember``, ``render_once``): new
    code or new libraries, new results. Computed once per process.
    """
    versions = " ".join(f"{library} {metadata.version(library)}" for library in ("numpy", "pandas"))
    digest = hashlib.sha256(versions.encode())
    for module in modules:
        spec = importlib.util.find_spec(module)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        digest.update(origin.read_bytes() if origin is not None and origin.is_file() else module.encode())
    return digest.hexdigest()
