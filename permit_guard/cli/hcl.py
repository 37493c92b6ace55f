"""Writing HCL for Permit.io's Terraform provider: strings, labels, aligned attributes."""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["Labels", "aligned", "label", "string"]


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
