"""How a configuration is chosen: a frozen dataclass per measure or experiment, with `quick()` and
`full()` constructors, and one way to merge command-line overrides into it."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C")


def override(config: C, **changes: Any) -> C:
    """`config` with the named fields replaced. None means "not given" (a CLI option left at its
    default) and keeps the config's value; an unknown field name is a TypeError."""
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **given)  # type: ignore[type-var]
