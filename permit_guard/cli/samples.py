"""Placeholder arguments for describing a component: a value of each argument's declared type.

``permit-guard inspect`` maps a call with these values to show which
attributes a request carries; strings are the ``{name}`` placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastmcp.prompts.base import Prompt

from permit_guard.components.binding import ArgumentBinder
from permit_guard.components.lookup import Component
from permit_guard.methods import Kind

__all__ = ["sample_arguments"]

#: Nested schemas deeper than this get no sample value.
_MAX_SAMPLE_DEPTH = 8


def sample_arguments(kind: Kind, item: Component, binder: ArgumentBinder) -> dict[str, Any]:
    """A value of the declared type for every argument a client can send."""
    schema: Any
    if kind == "prompt" and isinstance(item, Prompt):
        schema = _prompt_schema(item, binder)
    elif kind in ("tool", "template"):
        schema = getattr(item, "parameters", None)
    else:
        return {}
    if not isinstance(schema, Mapping):
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    defs = schema.get("$defs")
    defs = defs if isinstance(defs, Mapping) else {}
    return {str(name): _sample(prop, defs, str(name), 0) for name, prop in properties.items()}


def _prompt_schema(prompt: Prompt, binder: ArgumentBinder) -> dict[str, Any]:
    """Prompt arguments travel as strings; the binder knows the types the function reads."""
    # The binder knows the function's types; a prompt has no other typed schema.
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for argument in prompt.arguments or []:
        schema: Any = binder.json_schema(argument.name) or {"type": "string"}
        if isinstance(schema, Mapping) and isinstance(schema.get("$defs"), Mapping):
            defs.update(schema["$defs"])
        properties[argument.name] = schema
    return {"type": "object", "properties": properties, "$defs": defs}


def _sample(schema: Any, defs: Mapping[str, Any], name: str, depth: int) -> Any:
    """A JSON value the schema admits; strings are the ``{name}`` placeholder."""
    if not isinstance(schema, Mapping) or depth > _MAX_SAMPLE_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _sample(defs.get(ref.removeprefix("#/$defs/")), defs, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            concrete = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _sample(concrete[0], defs, name, depth + 1) if concrete else None
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    properties = schema.get("properties")
    if declared == "object" or isinstance(properties, Mapping):
        if not isinstance(properties, Mapping):
            return {}
        return {str(k): _sample(v, defs, str(k), depth + 1) for k, v in properties.items()}
    return {
        "string": f"{{{name}}}",
        "integer": 0,
        "number": 0.0,
        "boolean": False,
        "array": [],
    }.get(str(declared))
