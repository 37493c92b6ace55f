"""What the decorators check of a decorated function's signature, at decoration time.

The argument names a spec uses (``key=``, ``tenant=``, ``@abac_from_args``, an
attribute loader's parameters) must be arguments clients send, and a misuse
is reported with the function's qualified name and what to write instead.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from typing import Any

from permit_guard.components.binding import call_argument_names
from permit_guard.exceptions import DecoratorError
from permit_guard.spec import AttributeLoader, Loader

__all__ = [
    "check_argument",
    "injected_parameters",
    "loader_of",
    "loader_parameters",
    "qualified_name",
    "without_parentheses",
]


def loader_parameters(load: object) -> tuple[str, ...]:
    """The parameters of an attribute loader, which must all be passable by name."""
    if not callable(load):
        raise DecoratorError(
            f"require_permission(attributes=...) takes a callable, got {load!r}",
            function="require_permission",
        )
    label = qualified_name(load)
    try:
        parameters = inspect.signature(load).parameters.values()
    except (TypeError, ValueError) as exc:
        raise DecoratorError(
            f"attribute loader {label}: its signature cannot be read", function=label
        ) from exc
    names = []
    for parameter in parameters:
        if parameter.kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            raise DecoratorError(
                f"attribute loader {label}: parameter {parameter.name!r} is "
                f"{parameter.kind.description}; a loader takes the arguments it needs by name",
                function=label,
            )
        names.append(parameter.name)
    return tuple(names)


def loader_of(fn: Callable[..., Any], load: AttributeLoader, names: tuple[str, ...]) -> Loader:
    """The loader of ``fn``; each of its parameters must be an argument clients send."""
    label = qualified_name(load)
    injected = injected_parameters(fn)
    for name in names:
        usage = f"attribute loader {label}: parameter {name!r}"
        check_argument(fn, name, usage)
        if name in injected:
            qualname = qualified_name(fn)
            raise DecoratorError(
                f"{qualname}: {usage} names an argument the server injects, which clients "
                "never send",
                function=qualname,
            )
    # An object with an async __call__ is an async loader too.
    is_async = inspect.iscoroutinefunction(load) or inspect.iscoroutinefunction(type(load).__call__)
    return Loader(fn=load, arguments=names, is_async=is_async, name=label)


def injected_parameters(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters of ``fn`` the server injects (a ``Context``, a dependency).

    As far as can be told at decoration time; the guard denies a call whose
    loader still names one it finds out about later.
    """
    try:
        from fastmcp.server.context import Context
        from fastmcp.utilities.types import is_class_member_of_type
        from uncalled_for import Dependency
    except ImportError:
        return frozenset()
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        # Unresolvable annotations (forward references): checked when it runs.
        hints = {}
    names = set()
    for name, parameter in inspect.signature(fn).parameters.items():
        annotation = hints.get(name, parameter.annotation)
        metadata = typing.get_args(annotation)[1:] if hasattr(annotation, "__metadata__") else ()
        if (
            isinstance(parameter.default, Dependency)
            or any(isinstance(item, Dependency) for item in metadata)
            or is_class_member_of_type(annotation, Context)
        ):
            names.add(name)
    return frozenset(names)


def check_argument(
    fn: Callable[..., Any], name: str, usage: str, *, literal: str | None = None
) -> None:
    """Fail at decoration time when ``fn`` has no argument called ``name``.

    An argument a dependency of ``fn`` owns through ``CallArgument()`` counts:
    FastMCP makes it part of the component's input. The error suggests the
    argument ``name`` resembles and, for ``literal`` (``key`` or ``tenant``),
    the ``fixed(...)`` that says the value itself was meant.
    """
    qualname = qualified_name(fn)
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError) as exc:
        raise DecoratorError(
            f"{qualname}: {usage} needs a function whose signature can be read",
            function=qualname,
        ) from exc
    if name in parameters and parameters[name].kind not in (
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ):
        return
    owned = call_argument_names(fn)
    if name in owned:
        return
    arguments = [*(p for p in parameters if p not in ("self", "cls")), *owned]
    known = ", ".join(arguments) or "none"
    close = difflib.get_close_matches(name, arguments, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if literal is not None:
        hint += f"; for the {literal} {name!r} itself, write {literal}=fixed({name!r})"
    raise DecoratorError(
        f"{qualname}: {usage} names no argument of the function (arguments: {known}){hint}",
        function=qualname,
    )


def qualified_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (or of any callable), for messages."""
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}"


def without_parentheses(fn: Callable[..., Any]) -> DecoratorError:
    """The error for ``@abac_from_args`` written without parentheses, with what to write."""
    qualname = qualified_name(fn)
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    server_side = injected_parameters(fn) if parameters else frozenset()
    listing = ", ".join(
        repr(p.name)
        for p in parameters
        if p.name not in ("self", "cls", *server_side)
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    return DecoratorError(
        f"{qualname}: @abac_from_args is used without parentheses: write "
        f"@abac_from_args({listing}) with the arguments the engine may see "
        "(@abac_from_args() sends none)",
        function=qualname,
    )
