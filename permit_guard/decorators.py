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

Misuse fails here, at decoration time, naming the function and what to write
instead: an argument name the function does not take (a loader's parameters
included; ``tenant="acme"`` meant as a value is ``tenant=fixed("acme")``),
``@require_permission`` or ``@abac_from_args`` without parentheses, ``@public``
together with ``@require_permission``, or two different specs of the same kind
on one function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from permit_guard._signatures import (
    check_argument,
    loader_of,
    loader_parameters,
    qualified_name,
    without_parentheses,
)
from permit_guard.exceptions import DecoratorError
from permit_guard.spec import (
    SPEC_ATTRIBUTE,
    AttributeLoader,
    Fixed,
    GuardSpec,
    fixed,
    record_spec,
)

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
    if callable(action):
        # `@require_permission` with no parentheses: Python passed the function as the action.
        qualname = qualified_name(action)
        raise DecoratorError(
            f"{qualname}: @require_permission is used without parentheses: write "
            '@require_permission() (or @require_permission("action", resource=...))',
            function=qualname,
        )
    for label, text in (("action", action), ("resource", resource)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise DecoratorError(
                f"require_permission({label}=...) must be a non-empty string, got {text!r}",
                function="require_permission",
            )
    _check_ref("key", key)
    _check_ref("tenant", tenant)
    loader_arguments = loader_parameters(attributes) if attributes is not None else ()

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = qualified_name(fn)
        for label, ref in (("key", key), ("tenant", tenant)):
            if isinstance(ref, str):
                check_argument(fn, ref, f"require_permission({label}={ref!r})", literal=label)
        loader = None
        if attributes is not None:
            loader = loader_of(fn, attributes, loader_arguments)
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
    if len(names) == 1 and callable(names[0]):
        # `@abac_from_args` with no parentheses: Python passed the function as a name.
        raise without_parentheses(names[0])
    for name in names:
        if not isinstance(name, str):
            raise DecoratorError(
                f"abac_from_args takes argument names as strings, got {name!r}",
                function="abac_from_args",
            )
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
            check_argument(fn, name, f"abac_from_args({name!r})")
        spec = GuardSpec(abac_args=tuple(names), abac_prefix=prefix, function=qualified_name(fn))
        _merge(fn, spec, "abac_from_args")
        return fn

    return decorate


def public(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark a component as public: never checked, always listed, even under default deny.

    Use it for what a caller needs before it has credentials, such as ``login``.

    Raises:
        DecoratorError: If the function also has ``@require_permission``.
    """
    _merge(fn, GuardSpec(mode="public", function=qualified_name(fn)), "public")
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
        record_spec(fn, merged)
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
