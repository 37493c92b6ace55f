"""Arguments as resource attributes: flattened, and bounded in number and size.

``{"address": {"city": "x"}}`` becomes ``arg_address_city``; nested objects
deeper than :data:`MAX_FLATTEN_DEPTH` stay JSON objects. A request carries at
most :data:`MAX_ATTRIBUTES` argument attributes of at most
:data:`MAX_ATTRIBUTE_BYTES` together (loaded attributes too, see
:mod:`permit_guard.loaders`); past that the arguments are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from permit_guard.exceptions import InvalidArguments

__all__ = ["MAX_ATTRIBUTES", "MAX_ATTRIBUTE_BYTES", "MAX_FLATTEN_DEPTH", "check_size", "flatten"]

#: Nested objects are flattened this many levels deep; deeper ones stay JSON objects.
MAX_FLATTEN_DEPTH = 3
#: Most argument attributes one request may carry.
MAX_ATTRIBUTES = 256
#: Largest JSON size of all argument attributes together.
MAX_ATTRIBUTE_BYTES = 64 * 1024


def flatten(values: Mapping[str, Any], prefix: str, component: str) -> dict[str, Any]:
    """``{"address": {"city": "x"}}`` → ``{"arg_address_city": "x"}``; lists stay arrays."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if type(value) not in _PLAIN and isinstance(value, Mapping) and value:
            return _flatten_nested(values, prefix, component)
        flat[f"{prefix}{name}"] = value
    return flat


#: Values that are never a mapping, told apart without an ABC check.
_PLAIN: Final = frozenset({str, int, float, bool, type(None), list})


def _flatten_nested(values: Mapping[str, Any], prefix: str, component: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def put(name: str, value: Any, depth: int) -> None:
        if isinstance(value, Mapping) and value and depth < MAX_FLATTEN_DEPTH:
            for key, item in value.items():
                put(f"{name}_{key}", item, depth + 1)
            return
        if name in flat:
            # Two paths name one attribute (`a_b` and `a.b`): ambiguous, refused.
            raise InvalidArguments(f"{component}: arguments flatten to {name!r} twice")
        flat[name] = value

    for name, value in values.items():
        put(f"{prefix}{name}", value, 0)
    return flat


_NUMBERS: Final = frozenset({int, float, bool})


def check_size(attributes: Mapping[str, Any], component: str) -> None:
    # Cheap bound first: scalars only and short strings need no serialisation.
    # An upper bound on the JSON size: at most 12 bytes per character (a
    # non-BMP character escapes to two \uXXXX), names included.
    estimate = 0
    for name, value in attributes.items():
        estimate += 12 * len(name) + 4
        kind = type(value)
        if kind is str:
            estimate += 12 * len(value) + 2
        elif kind in _NUMBERS or value is None or isinstance(value, int | float):
            estimate += 24
        elif isinstance(value, str):
            estimate += 12 * len(value) + 2
        else:
            estimate = MAX_ATTRIBUTE_BYTES + 1
            break
    if estimate <= MAX_ATTRIBUTE_BYTES and len(attributes) <= MAX_ATTRIBUTES:
        return
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidArguments(
            f"{component}: {len(attributes)} attributes exceed {MAX_ATTRIBUTES}; select the "
            "arguments the policy needs with @abac_from_args"
        )
    size = len(json.dumps(attributes, default=str).encode())
    if size > MAX_ATTRIBUTE_BYTES:
        raise InvalidArguments(
            f"{component}: arguments take {size} bytes as attributes, over "
            f"{MAX_ATTRIBUTE_BYTES}; select the arguments the policy needs with @abac_from_args"
        )
