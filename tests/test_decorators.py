"""Decorators: what they record, where they work, and the misuse they refuse."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import FastMCP

from permit_guard import DecoratorError, abac_from_args, fixed, public, require_permission
from permit_guard.components.resolve import resolve_spec
from permit_guard.spec import spec_of


def test_decorator_returns_the_function_itself() -> None:
    """Decorators never wrap: FastMCP sees the user's own function and signature."""

    def refund(amount: float) -> str:
        return str(amount)

    assert require_permission()(refund) is refund
    assert abac_from_args("amount")(refund) is refund


@pytest.mark.parametrize("order", ["above", "below"])
async def test_both_stacking_orders(order: str) -> None:
    """A spec is found whether the decorator stands above or below @mcp.tool."""
    mcp: FastMCP[Any] = FastMCP("s")

    def refund(amount: float) -> str:
        return str(amount)

    if order == "above":
        require_permission("pay")(mcp.tool(refund))
    else:
        mcp.tool(require_permission("pay")(refund))
    tool = await mcp.get_tool("refund")
    assert tool is not None
    spec = await resolve_spec(tool)
    assert spec is not None
    assert spec.action == "pay"


async def test_async_functions_and_prompts_and_templates() -> None:
    """Async tools, prompts and resource templates carry their specs."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission("a")
    async def tool_fn(x: int) -> int:
        return x

    @mcp.prompt
    @require_permission("b")
    async def prompt_fn(topic: str) -> str:
        return topic

    # Set after the template exists: FastMCP wraps the function, so the guard
    # must follow __wrapped__ to find it.
    @require_permission("c", key="item")
    @mcp.resource("data://{item}")
    def template_fn(item: str) -> str:
        return item

    tool = await mcp.get_tool("tool_fn")
    prompt = await mcp.get_prompt("prompt_fn")
    template = await mcp.get_resource_template("data://x")
    assert tool
    assert prompt
    assert template
    actions = [(await resolve_spec(c)).action for c in (tool, prompt, template)]  # type: ignore[union-attr]
    assert actions == ["a", "b", "c"]


def test_abac_and_require_combine() -> None:
    """@abac_from_args and @require_permission merge into one spec, in either order."""

    @require_permission("pay", resource="ledger")
    @abac_from_args("amount", prefix="p_")
    def first(amount: float, memo: str) -> None: ...

    @abac_from_args("amount", prefix="p_")
    @require_permission("pay", resource="ledger")
    def second(amount: float, memo: str) -> None: ...

    a, b = spec_of(first), spec_of(second)
    assert a is not None
    assert b is not None
    assert (a.action, a.resource, a.abac_args, a.abac_prefix) == (
        "pay",
        "ledger",
        ("amount",),
        "p_",
    )
    assert (a.mode, a.action, a.resource, a.abac_args) == (
        b.mode,
        b.action,
        b.resource,
        b.abac_args,
    )


def test_abac_with_no_names_sends_nothing() -> None:
    """abac_from_args() with no names records an empty selection, not 'all'."""

    @abac_from_args()
    def fn(x: int) -> None: ...

    spec = spec_of(fn)
    assert spec is not None
    assert spec.abac_args == ()


def test_fixed_key_and_tenant() -> None:
    """fixed('...') gives a literal key or tenant instead of an argument name."""

    @require_permission(key=fixed("singleton"), tenant=fixed("acme"))
    def fn() -> None: ...

    spec = spec_of(fn)
    assert spec is not None
    assert (spec.key_value, spec.tenant_value, spec.key_arg, spec.tenant_arg) == (
        "singleton",
        "acme",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("apply", "message"),
    [
        (lambda f: abac_from_args("amont")(f), "abac_from_args('amont') names no argument"),
        (lambda f: require_permission(key="id")(f), "key='id'"),
        (lambda f: require_permission(tenant="org")(f), "tenant='org'"),
        (lambda f: public(require_permission()(f)), "@public cannot be combined"),
        (lambda f: require_permission()(public(f)), "@public cannot be combined"),
        (
            lambda f: require_permission("a")(require_permission("b")(f)),
            "applied twice with different arguments",
        ),
        (
            lambda f: abac_from_args("amount")(abac_from_args("memo")(f)),
            "applied twice with different arguments",
        ),
        (lambda f: public(abac_from_args("amount")(f)), "would have no effect"),
    ],
)
def test_misuse_fails_at_decoration_time(apply: Any, message: str) -> None:
    """Misuse raises DecoratorError naming the function, before the server runs."""

    def refund(amount: float, memo: str) -> str:
        return memo

    with pytest.raises(DecoratorError, match="refund") as info:
        apply(refund)
    assert message in str(info.value)
    assert info.value.function.endswith("refund")


def test_same_spec_twice_is_harmless() -> None:
    """Applying the same requirement twice is allowed (idempotent)."""

    @require_permission("a")
    @require_permission("a")
    def fn() -> None: ...

    spec = spec_of(fn)
    assert spec is not None
    assert spec.action == "a"


@pytest.mark.parametrize(
    "call",
    [
        lambda: require_permission(""),
        lambda: require_permission(resource="  "),
        lambda: require_permission(key=3),  # type: ignore[arg-type]
        lambda: abac_from_args("a", "a"),
        lambda: fixed(""),
    ],
)
def test_bad_decorator_arguments(call: Any) -> None:
    """Empty names, non-string references and duplicates are refused."""
    with pytest.raises(DecoratorError):
        call()
