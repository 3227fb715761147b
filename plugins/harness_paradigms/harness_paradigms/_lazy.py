"""Heavy libraries imported on first use, so that importing a kind (``harness list``) stays cheap."""

from __future__ import annotations

import importlib
from typing import Any


class lazy_module:
    """A module imported on first attribute access: ``pd = lazy_module("pandas")``, then ``pd.DataFrame``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
