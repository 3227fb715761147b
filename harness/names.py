"""Names as users write them: ``PatchCore``, ``EfficientAd``, ``reverse-distillation`` resolve to registered entries.

anomalib spells its models as classes (``Padim``, ``PatchCore``, ``EfficientAd``,
``ReverseDistillation``); the registries use snake case (``padim``, ``patchcore``,
``efficient_ad``, ``reverse_distillation``). A name matches an entry when both are equal after
dropping case, underscores, hyphens and spaces; an exact name always wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalise(name: str) -> str:
    """``name`` without case and separators: ``Efficient_Ad`` -> ``efficientad``."""
    return _SEPARATORS.sub("", str(name)).lower()


def resolve_name(name: str, available: Iterable[str]) -> str | None:
    """The registered name ``name`` means, or None when none matches (or several do)."""
    names = list(available)
    if name in names:
        return name
    matches = [n for n in names if normalise(n) == normalise(name)]
    return matches[0] if len(matches) == 1 else None


def suggestion(name: str, available: Iterable[str]) -> str | None:
    """The closest registered name to a near miss (compared without case and separators), or None."""
    names = list(available)
    by_key = {normalise(n): n for n in names}
    close = get_close_matches(normalise(name), list(by_key), n=1, cutoff=0.75)
    return by_key[close[0]] if close else None


def unknown_message(kind: str, name: str, available: Iterable[str]) -> str:
    """The unknown-name message with a suggestion found without case or separators."""
    names = sorted(available)
    close = suggestion(name, names)
    hint = f" Did you mean '{close}'?" if close else ""
    return f"unknown {kind} '{name}'.{hint} Available: {', '.join(names) or 'none'}"
