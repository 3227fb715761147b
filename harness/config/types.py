"""Strict scalar types for protocol schemas: YAML's ``true`` is no number and ``"3"`` no integer.

Pydantic's lax mode would turn ``image_size: true`` into 1 and ``bootstrap: "10"`` into 10;
protocol files are hand-written, so a value of the wrong YAML type is a mistake to report,
never to coerce. Sequences stay lax so that YAML lists fill tuple fields.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr

NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite number (integers accepted); ``true``, ``"0.5"``, ``.inf`` and ``.nan`` are rejected."""
Fraction = Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)]
"""A number in the open interval (0, 1)."""
Str = StrictStr
Bool = StrictBool


def _each_once(values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    twice = [value for index, value in enumerate(values or ()) if value in values[:index]]
    if twice:
        raise ValueError(f"{twice[0]!r} appears twice; list each once (its rows would be counted twice)")
    return values


Distinct = AfterValidator(_each_once)
"""For a list setting, ``Annotated[tuple[...], Distinct]``: each entry once (seeds, categories, sweep values)."""


class OptionsModel(BaseModel):
    """Base of every options model: unknown keys are errors, values are not coerced, instances frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
