"""The argument values a component's function will actually receive.

The engine must judge the value that runs, not the value that was sent.
FastMCP validates arguments with pydantic in lax mode, so ``"150"`` sent for a
``float`` runs as ``150.0``, prompt arguments arrive as strings and are
converted, and an omitted argument runs with its default. A policy that saw the
string ``"150"`` (a comparison on the wrong type is false, which ``not`` turns
into an allow) or no attribute at all would be judging something else.

So each selected argument is validated here against the function's own
annotation, the same way, and sent to the engine in its JSON form; an argument
the function would refuse is refused before the engine is asked.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import typing
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import AliasChoices, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from permit_guard.exceptions import InvalidArguments

__all__ = ["ArgumentBinder", "binder_for_function", "binder_for_schema", "call_argument_names"]

_MISSING: Any = object()

# JSON-schema simple types and the Python values that satisfy them; bool is no
# number in JSON although it is an int in Python.
_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass(frozen=True, slots=True)
class _Parameter:
    adapter: TypeAdapter[Any] | None
    default: Any
    json_types: tuple[type, ...] | None = None
    #: For ``str`` / ``int`` / ``bool`` annotations: a value of exactly that
    #: type is what pydantic would hand the function, so it skips validation.
    exact: type | None = None
    #: The names the client sends it under (its alias, if it has one).
    wire: tuple[str, ...] = ()
    #: Why it cannot be read faithfully (an alias path), if it cannot.
    unbindable: str | None = None


class ArgumentBinder:
    """Turns sent arguments into the JSON values the function will run with."""

    __slots__ = ("_parameters", "coerce_strings", "declared")

    def __init__(
        self, parameters: Mapping[str, _Parameter], *, coerce_strings: bool = False
    ) -> None:
        self._parameters = dict(parameters)
        self.coerce_strings = coerce_strings
        #: The argument names the function declares, in order.
        self.declared: tuple[str, ...] = tuple(parameters)

    def json_schema(self, name: str) -> dict[str, Any] | None:
        """The JSON schema of argument ``name`` as the function types it, if known."""
        parameter = self._parameters.get(name)
        if parameter is None or parameter.adapter is None:
            return None
        try:
            return parameter.adapter.json_schema()
        except Exception:  # some Python types have no JSON schema
            return None

    def bind(
        self, arguments: Mapping[str, Any], names: Iterable[str], component: str
    ) -> dict[str, Any]:
        """The values of ``names`` as the function will see them, in JSON form.

        An omitted argument takes its default; one without a default is left
        out (FastMCP refuses the call anyway).

        Raises:
            InvalidArguments: If the function would refuse a value.
        """
        values: dict[str, Any] = {}
        for name in names:
            parameter = self._parameters.get(name)
            if parameter is None:
                if name in arguments:
                    values[name] = arguments[name]
                continue
            if parameter.unbindable is not None:
                raise InvalidArguments(f"{component}: argument {name!r} {parameter.unbindable}")
            sent = _MISSING
            for wire in parameter.wire or (name,):
                if wire in arguments:
                    sent = arguments[wire]
                    break
            if sent is not _MISSING:
                values[name] = self._convert(parameter, sent, name, component)
            elif parameter.default is not _MISSING:
                values[name] = _to_json(parameter.adapter, parameter.default)
        return values

    def _convert(self, parameter: _Parameter, value: Any, name: str, component: str) -> Any:
        if parameter.exact is not None and type(value) is parameter.exact:
            return value
        if parameter.adapter is None:
            if parameter.json_types is not None and not _matches(value, parameter.json_types):
                raise InvalidArguments(
                    f"{component}: argument {name!r} has type {type(value).__name__}, "
                    "which the component does not declare"
                )
            return _to_json(None, value)
        try:
            validated = parameter.adapter.validate_python(value)
        except ValidationError as exc:
            if not (self.coerce_strings and isinstance(value, str)):
                raise InvalidArguments(
                    f"{component}: argument {name!r} is not valid: {exc.errors()[0]['msg']}"
                ) from None
            # Prompt arguments travel as strings; FastMCP also reads them as JSON.
            try:
                validated = parameter.adapter.validate_json(value)
            except ValidationError:
                raise InvalidArguments(
                    f"{component}: argument {name!r} is not valid: {exc.errors()[0]['msg']}"
                ) from None
        return _to_json(parameter.adapter, validated)


def _to_json(adapter: TypeAdapter[Any] | None, value: Any) -> Any:
    if adapter is not None:
        try:
            value = adapter.dump_python(value, mode="json")
        except Exception:
            # A value pydantic cannot serialise is refused rather than sent raw.
            raise InvalidArguments(
                f"value of type {type(value).__name__} has no JSON form"
            ) from None
    if not _finite(value):
        # NaN compares false with everything (so `not greater-than` would
        # allow it) and neither NaN nor infinity exists in JSON.
        raise InvalidArguments("NaN and infinite numbers cannot be judged by a policy")
    return value


_SCALARS = frozenset({str, int, bool, type(None)})
# Annotations whose exact-type values pydantic returns unchanged (not float:
# an int becomes a float).
_EXACT: frozenset[Any] = frozenset({str, int, bool})
_SEQUENCES = (list, tuple)


def _finite(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 32:
        return True
    if isinstance(value, _SEQUENCES):
        return all(_finite(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(_finite(item, depth + 1) for item in value.values())
    return not isinstance(value, float) or math.isfinite(value)


def _matches(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


_cache: weakref.WeakKeyDictionary[Callable[..., Any], ArgumentBinder] = weakref.WeakKeyDictionary()


def binder_for_function(fn: Callable[..., Any], *, coerce_strings: bool = False) -> ArgumentBinder:
    """The binder of a user function, built once from its signature and type hints.

    Parameters the server injects (a FastMCP ``Context``, ``Depends(...)``)
    are left out: clients never send them. Arguments that a dependency reads
    with ``CallArgument()`` and the function does not declare are added, as
    FastMCP adds them to the tool's input schema: typed by the dependency's
    annotation, with its default. A parameter with an alias is read under its
    alias, as pydantic reads it.

    Args:
        fn: The function FastMCP will call.
        coerce_strings: Whether string values are also read as JSON, as FastMCP
            does for prompt arguments.
    """
    cached = _cache.get(fn)
    if cached is not None and cached.coerce_strings == coerce_strings:
        return cached
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    parameters: dict[str, _Parameter] = {}
    client_facing = _client_facing(fn)
    own = inspect.signature(fn).parameters
    for name, parameter in own.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if client_facing is not None and name not in client_facing:
            continue
        parameters[name] = _parameter(hints.get(name, parameter.annotation), parameter.default)
    for name, parameter in (client_facing or {}).items():
        # Owned by a dependency's CallArgument: FastMCP validates it against the
        # dependency's annotation (already resolved) and hands it only to it.
        if name not in own and parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            parameters[name] = _parameter(parameter.annotation, parameter.default)
    binder = ArgumentBinder(parameters, coerce_strings=coerce_strings)
    with contextlib.suppress(TypeError):  # not weakly referenceable: just not cached
        _cache[fn] = binder
    return binder


def _parameter(annotation: Any, default: Any) -> _Parameter:
    """How one argument is read: its adapter, default and wire names."""
    adapter = None if annotation is inspect.Parameter.empty else _adapter(annotation)
    field_infos = [default] if isinstance(default, FieldInfo) else []
    field_infos += [m for m in typing.get_args(annotation)[1:] if isinstance(m, FieldInfo)]
    if isinstance(default, FieldInfo):
        default = default.get_default(call_default_factory=True)
        default = _MISSING if default is PydanticUndefined else default
    elif default is inspect.Parameter.empty:
        default = _MISSING
    wire, unbindable = _wire_names(field_infos)
    exact = annotation if annotation in _EXACT else None
    return _Parameter(
        adapter=adapter, default=default, exact=exact, wire=wire, unbindable=unbindable
    )


def _client_facing(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter] | None:
    """The parameters a client sends, as FastMCP sees them (CallArgument-owned included)."""
    try:
        from fastmcp.server.dependencies import without_injected_parameters

        return inspect.signature(without_injected_parameters(fn)).parameters
    except Exception:
        # Not a function FastMCP can wrap: keep every parameter.
        return None


def call_argument_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The arguments FastMCP adds to ``fn``'s input schema for its dependencies.

    A dependency of ``fn`` (``Depends(...)``, at any depth) that reads an
    argument with ``CallArgument()`` which ``fn`` does not declare makes it an
    argument of the component (FastMCP 4.2 and later; none before). Optional
    references add nothing.

    Safe to call at decoration time: it does not fill FastMCP's cache of
    wrapped functions, which must see the signature FastMCP registers.
    """
    if not _fastmcp_exposes_call_arguments():
        return ()
    try:
        from uncalled_for import get_call_argument_parameters

        own = inspect.signature(fn).parameters
        return tuple(p.name for p in get_call_argument_parameters(fn) if p.name not in own)
    except Exception:
        # No readable dependency graph: FastMCP could not register it either.
        return ()


@lru_cache(maxsize=1)
def _fastmcp_exposes_call_arguments() -> bool:
    """Whether this FastMCP puts CallArgument-owned arguments in the input schema."""
    try:
        from fastmcp.dependencies import CallArgument, Depends
        from fastmcp.server.dependencies import without_injected_parameters
    except ImportError:
        return False

    def probe(value: int = CallArgument()) -> int:
        return value

    def component(probed: int = Depends(probe)) -> int:
        return probed

    return "value" in inspect.signature(without_injected_parameters(component)).parameters


def _wire_names(field_infos: list[FieldInfo]) -> tuple[tuple[str, ...], str | None]:
    """The names a parameter is sent under, or why they cannot be told."""
    for info in field_infos:
        alias = info.validation_alias if info.validation_alias is not None else info.alias
        if alias is None:
            continue
        if isinstance(alias, str):
            return (alias,), None
        if isinstance(alias, AliasChoices) and all(isinstance(c, str) for c in alias.choices):
            return tuple(str(c) for c in alias.choices), None
        # An alias path reads nested data: refuse rather than judge a guess.
        return (), "has an alias path the guard cannot read; select other arguments"
    return (), None


def binder_for_schema(schema: Mapping[str, Any] | None) -> ArgumentBinder:
    """A binder for a component with no Python function, from its JSON schema.

    Values are checked against the declared simple JSON types (``anyOf`` of
    simple types included) and defaults come from the schema.
    """
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    parameters: dict[str, _Parameter] = {}
    if isinstance(properties, Mapping):
        for name, prop in properties.items():
            if not isinstance(prop, Mapping):
                continue
            default = prop.get("default", _MISSING)
            parameters[str(name)] = _Parameter(
                adapter=None, default=default, json_types=_json_types(prop)
            )
    return ArgumentBinder(parameters)


def _json_types(prop: Mapping[str, Any]) -> tuple[type, ...] | None:
    """The Python types a schema property admits, or ``None`` when it cannot be told."""
    declared = prop.get("type")
    if isinstance(declared, str):
        names: list[Any] = [declared]
    elif isinstance(declared, list):
        names = declared
    else:
        names = []
        for option in prop.get("anyOf") or prop.get("oneOf") or ():
            if not isinstance(option, Mapping) or not isinstance(option.get("type"), str):
                return None
            names.append(option["type"])
    allowed: tuple[type, ...] = ()
    for name in names:
        if not isinstance(name, str) or name not in _JSON_TYPES:
            return None
        allowed += _JSON_TYPES[name]
    return allowed or None


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return _cached_adapter(annotation)
    except TypeError:
        # An unhashable annotation: build it uncached.
        return _build_adapter(annotation)


@lru_cache(maxsize=1024)
def _cached_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    return _build_adapter(annotation)


def _build_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(annotation)
    except Exception:
        # Types pydantic cannot build an adapter for (FastMCP's Context,
        # arbitrary classes) are injected by the server, not sent by clients.
        return None
