"""Writing HCL for Permit.io's Terraform provider: strings, values, labels, aligned attributes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Labels", "aligned", "label", "string", "value"]


def aligned(pairs: Sequence[tuple[str, str]], *, indent: str = "  ") -> list[str]:
    """``key = value`` lines with the ``=`` aligned, as ``terraform fmt`` writes them."""
    width = max((len(key) for key, _ in pairs), default=0)
    return [f"{indent}{key.ljust(width)} = {value}" for key, value in pairs]


def string(text: str) -> str:
    """A quoted HCL string."""
    # JSON string escapes are HCL's; HCL also reads ${ and %{ as templates.
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def label(key: str) -> str:
    """A block label made of ``key``: letters, digits, ``_`` and ``-``, never a digit first."""
    made = "".join(c if c.isalnum() or c in "_-" else "_" for c in key)
    return made if made[:1].isalpha() or made[:1] == "_" else f"_{made}"


class Labels:
    """Block labels of one kind, each used once: a second ``a`` becomes ``a_2``."""

    __slots__ = ("_used",)

    def __init__(self) -> None:
        self._used: set[str] = set()

    def new(self, key: str) -> str:
        """A label for ``key`` that no earlier call returned."""
        base = label(key)
        made, n = base, 1
        while made in self._used:
            n += 1
            made = f"{base}_{n}"
        self._used.add(made)
        return made


def value(data: Any, indent: str = "") -> str:
    """A JSON value as an HCL expression, for ``jsonencode(...)``: short ones on one line.

    Object keys are always quoted (``"resource.arg_amount"``, ``"less-than"``).
    """
    short = _inline(data)
    if len(indent) + len(short) <= _WIDTH or not isinstance(data, Mapping | list) or not data:
        return short
    inner = indent + "  "
    if isinstance(data, Mapping):
        lines = [f"{inner}{string(key)} = {value(item, inner)}" for key, item in data.items()]
        return "{\n" + "\n".join(lines) + f"\n{indent}}}"
    return "[\n" + "\n".join(f"{inner}{value(item, inner)}," for item in data) + f"\n{indent}]"


#: Where :func:`value` breaks a value over lines.
_WIDTH = 88


def _inline(data: Any) -> str:
    if isinstance(data, Mapping):
        if not data:
            return "{}"
        return "{ " + ", ".join(f"{string(k)} = {_inline(v)}" for k, v in data.items()) + " }"
    if isinstance(data, list):
        return "[" + ", ".join(_inline(item) for item in data) + "]"
    if isinstance(data, str):
        return string(data)
    # true, false, null and numbers are written as JSON writes them.
    return json.dumps(data)
