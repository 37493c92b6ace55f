"""Decorators that mark tools, resources and prompts with their guard.

They record a frozen :class:`GuardSpec` on the function and never wrap it, so
FastMCP sees the function unchanged (its schema, its signature) and they work
above or below ``@mcp.tool`` / ``@mcp.resource`` / ``@mcp.prompt``::

    from fastmcp import FastMCP
    from permit_guard import abac_from_args, fixed, public, require_permission

    mcp = FastMCP("billing")

    @mcp.tool
    @require_permission()                      # resource "mcp_server", action "refund"
    @abac_from_args("amount", "currency")      # only these reach the engine
    def refund(amount: float, currency: str, memo: str) -> str: ...

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id", tenant="org")
    def delete_invoice(invoice_id: str, org: str) -> str: ...

    @mcp.tool
    @require_permission(tenant=fixed("acme"))  # a fixed tenant, not an argument
    def acme_report() -> str: ...

    @mcp.tool
    @require_permission("close", resource="issue", attributes=stored_issue)
    def close_issue(issue_id: int) -> str: ...  # stored_issue(issue_id) -> {"priority": 2}

    @mcp.tool
    @public                                    # never checked, always listed
    def health() -> str: ...

Misuse fails here, at decoration time, naming the function: an argument name
the function does not take (a loader's parameters included), ``@public``
together with ``@require_permission``, or two different specs of the same kind
on one function.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from permit_guard.components.binding import call_argument_names
from permit_guard.exceptions import DecoratorError
from permit_guard.spec import SPEC_ATTRIBUTE, AttributeLoader, Fixed, GuardSpec, Loader, fixed

__all__ = ["GuardSpec", "abac_from_args", "fixed", "public", "require_permission"]

P = ParamSpec("P")
R = TypeVar("R")


_Ref = str | Fixed | None


def require_permission(
    action: str | None = None,
    resource: str | None = None,
    *,
    key: _Ref = None,
    tenant: _Ref = None,
    attributes: AttributeLoader | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require the engine to allow ``action`` on ``resource`` before the component runs.

    Args:
        action: The action to check. Default: the method mapping (the tool name
            with ``_``, ``.``, ``/`` turned into ``-``; ``read`` for resources
            and prompts).
        resource: The resource type. Default: the method mapping
            (``mcp_server`` for tools, ``mcp_server_resources``...).
        key: The argument whose value is the resource instance key (for
            resource roles, e.g. ``"invoice_id"``), or ``fixed("...")``.
        tenant: The argument whose value is the tenant, or ``fixed("...")``.
            Default: the caller's tenant, else ``default``. For both, an
            argument a dependency owns through ``CallArgument()`` counts.
        attributes: An attribute loader: a sync or async callable whose
            parameters name arguments of the function, called with their
            values as the engine sees them (validated, defaults filled in)
            once per call, read or render, never for lists. The mapping it
            returns is sent as resource attributes under its own names,
            winning over argument attributes. A loader that raises, times out
            (``attribute_loader_timeout``) or returns anything but a mapping
            of JSON values denies the request.

    Returns:
        A decorator that records the requirement and returns the function itself.

    Raises:
        DecoratorError: On an empty action/resource, an argument name the
            function does not take (a loader's parameters included), a loader
            that is not a callable taking arguments by name, or a conflicting
            earlier decoration.
    """
    for label, text in (("action", action), ("resource", resource)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise DecoratorError(
                f"require_permission({label}=...) must be a non-empty string, got {text!r}",
                function="require_permission",
            )
    _check_ref("key", key)
    _check_ref("tenant", tenant)
    loader_arguments = _loader_arguments(attributes) if attributes is not None else ()

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = _qualname(fn)
        for label, ref in (("key", key), ("tenant", tenant)):
            if isinstance(ref, str):
                _check_argument(fn, ref, f"require_permission({label}={ref!r})")
        loader = None
        if attributes is not None:
            loader = _loader(fn, attributes, loader_arguments)
        spec = GuardSpec(
            mode="require",
            action=action,
            resource=resource,
            key_arg=key if isinstance(key, str) else None,
            key_value=key.value if isinstance(key, Fixed) else None,
            tenant_arg=tenant if isinstance(tenant, str) else None,
            tenant_value=tenant.value if isinstance(tenant, Fixed) else None,
            loader=loader,
            function=name,
        )
        _merge(fn, spec, "require_permission")
        return fn

    return decorate


def abac_from_args(
    *names: str, prefix: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Send only these arguments to the engine, as resource attributes ``<prefix><name>``.

    Without this decorator every top-level argument is sent. With it and no
    names, none is.

    Args:
        *names: Argument names of the decorated function, or of arguments a
            dependency of it owns through ``CallArgument()``.
        prefix: Attribute name prefix. Default: the ``tool_argument_prefix``
            setting (``arg_``).

    Returns:
        A decorator that records the selection and returns the function itself.

    Raises:
        DecoratorError: On a name the function does not take, a duplicate
            name, or a selection different from an earlier one.
    """
    if len(set(names)) != len(names):
        raise DecoratorError(
            f"abac_from_args{names!r} names an argument twice", function="abac_from_args"
        )
    if prefix is not None and not isinstance(prefix, str):
        raise DecoratorError(
            f"abac_from_args(prefix=...) must be a string, got {prefix!r}",
            function="abac_from_args",
        )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        for name in names:
            _check_argument(fn, name, f"abac_from_args({name!r})")
        spec = GuardSpec(abac_args=tuple(names), abac_prefix=prefix, function=_qualname(fn))
        _merge(fn, spec, "abac_from_args")
        return fn

    return decorate


def public(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark a component as public: never checked, always listed, even under default deny.

    Use it for what a caller needs before it has credentials, such as ``login``.

    Raises:
        DecoratorError: If the function also has ``@require_permission``.
    """
    _merge(fn, GuardSpec(mode="public", function=_qualname(fn)), "public")
    return fn


def _merge(fn: Callable[..., Any], new: GuardSpec, decorator: str) -> None:
    """Combine ``new`` with what earlier decorators recorded on ``fn``."""
    old: GuardSpec | None = getattr(fn, SPEC_ATTRIBUTE, None)
    if old is None:
        merged = new
    else:
        if {old.mode, new.mode} == {"require", "public"}:
            raise DecoratorError(
                f"{new.function}: @public cannot be combined with @require_permission",
                function=new.function,
            )
        if old.mode == new.mode == "require" and _requirement(old) != _requirement(new):
            raise DecoratorError(
                f"{new.function}: @require_permission applied twice with different arguments",
                function=new.function,
            )
        if (
            old.abac_args is not None
            and new.abac_args is not None
            and (old.abac_args, old.abac_prefix) != (new.abac_args, new.abac_prefix)
        ):
            raise DecoratorError(
                f"{new.function}: @abac_from_args applied twice with different arguments",
                function=new.function,
            )
        merged = replace(
            old if new.mode is None else _with_requirement(old, new),
            abac_args=new.abac_args if new.abac_args is not None else old.abac_args,
            abac_prefix=new.abac_prefix if new.abac_prefix is not None else old.abac_prefix,
        )
    if merged.is_public and merged.abac_args:
        raise DecoratorError(
            f"{new.function}: @public components are never checked, so @abac_from_args "
            "would have no effect",
            function=new.function,
        )
    try:
        setattr(fn, SPEC_ATTRIBUTE, merged)
    except (AttributeError, TypeError) as exc:
        raise DecoratorError(
            f"@{decorator} can only decorate functions, not {type(fn).__name__}",
            function=new.function,
        ) from exc


def _requirement(spec: GuardSpec) -> tuple[object, ...]:
    return (
        spec.action,
        spec.resource,
        spec.key_arg,
        spec.key_value,
        spec.tenant_arg,
        spec.tenant_value,
        spec.loader,
    )


def _with_requirement(old: GuardSpec, new: GuardSpec) -> GuardSpec:
    return replace(
        old,
        mode=new.mode,
        action=new.action,
        resource=new.resource,
        key_arg=new.key_arg,
        key_value=new.key_value,
        tenant_arg=new.tenant_arg,
        tenant_value=new.tenant_value,
        loader=new.loader,
    )


def _check_ref(label: str, ref: object) -> None:
    if ref is None or isinstance(ref, Fixed):
        return
    if not isinstance(ref, str) or not ref:
        raise DecoratorError(
            f"require_permission({label}=...) takes an argument name or fixed('...'), got {ref!r}",
            function="require_permission",
        )


def _loader_arguments(load: object) -> tuple[str, ...]:
    """The parameters of an attribute loader, which must all be passable by name."""
    if not callable(load):
        raise DecoratorError(
            f"require_permission(attributes=...) takes a callable, got {load!r}",
            function="require_permission",
        )
    label = _qualname(load)
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


def _loader(fn: Callable[..., Any], load: AttributeLoader, names: tuple[str, ...]) -> Loader:
    """The loader of ``fn``; each of its parameters must be an argument clients send."""
    label = _qualname(load)
    injected = _injected(fn)
    for name in names:
        usage = f"attribute loader {label}: parameter {name!r}"
        _check_argument(fn, name, usage)
        if name in injected:
            qualname = _qualname(fn)
            raise DecoratorError(
                f"{qualname}: {usage} names an argument the server injects, which clients "
                "never send",
                function=qualname,
            )
    # An object with an async __call__ is an async loader too.
    is_async = inspect.iscoroutinefunction(load) or inspect.iscoroutinefunction(type(load).__call__)
    return Loader(fn=load, arguments=names, is_async=is_async, name=label)


def _injected(fn: Callable[..., Any]) -> frozenset[str]:
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


def _check_argument(fn: Callable[..., Any], name: str, usage: str) -> None:
    """Fail at decoration time when ``fn`` has no argument called ``name``.

    An argument a dependency of ``fn`` owns through ``CallArgument()`` counts:
    FastMCP makes it part of the component's input.
    """
    qualname = _qualname(fn)
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
    known = ", ".join([*(p for p in parameters if p not in ("self", "cls")), *owned]) or "none"
    raise DecoratorError(
        f"{qualname}: {usage} names no argument of the function (arguments: {known})",
        function=qualname,
    )


def _qualname(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}"
