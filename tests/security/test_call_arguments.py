"""Arguments a dependency's ``CallArgument`` owns are judged like the function's own.

FastMCP 4.2 adds an argument that a ``Depends(...)`` dependency reads with
``CallArgument()`` to the tool's public input schema even when the tool
function does not declare it; its validated value reaches only the dependency.
The guard must see it as FastMCP does, or a policy never judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.tools import Tool
from pydantic import Field

from permit_guard import (
    AuthzRequest,
    DecoratorError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    require_permission,
)
from permit_guard.testing import RecordingEngine

try:
    from fastmcp.dependencies import CallArgument, Depends
except ImportError:  # pragma: no cover - a FastMCP without CallArgument
    pytest.skip("this FastMCP has no CallArgument", allow_module_level=True)


def _exposes_call_arguments() -> bool:
    """Whether this FastMCP puts a dependency's CallArgument in the tool's schema."""

    def probe(value: int = CallArgument()) -> int:
        return value

    def tool(probed: int = Depends(probe)) -> int:
        return probed

    return "value" in Tool.from_function(tool).parameters.get("properties", {})


pytestmark = pytest.mark.skipif(
    not _exposes_call_arguments(),
    reason="this FastMCP does not expose a dependency's CallArgument as a tool argument "
    "(FastMCP 4.2 does)",
)

DENIED = "not found or not authorized"

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["show-account", "move-money"]},
        "mcp_server_tools": {"actions": ["list"]},
        "account": {"actions": ["read"], "roles": {"holder": ["read"]}},
    },
    "resource_sets": {
        # A negative condition: an attribute the engine never sees makes it true.
        "not_large_account": {
            "resource": "mcp_server",
            "condition": {"not": {"resource.arg_account_id": {"greater-than": 100}}},
        },
    },
    "roles": {
        "teller": {
            "grants": {
                "not_large_account": ["show-account", "move-money"],
                "mcp_server_tools": ["list"],
            }
        },
    },
    "users": {"bob": {"roles": ["teller"], "resource_roles": {"account:42": ["holder"]}}},
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Account:
    """What the dependency received for the arguments it owns."""

    id: int
    region: str


#: Every ``(account_id, region)`` the dependency was called with.
OPENED: list[tuple[int, str]] = []


def open_account(
    account_id: Annotated[int, Field(ge=1)] = CallArgument(),
    region: str = CallArgument(default="eu"),
) -> Account:
    """A dependency that owns ``account_id`` and ``region``; the tools never declare them."""
    OPENED.append((account_id, region))
    return Account(id=account_id, region=region)


def open_org(org: str = CallArgument()) -> str:
    """A dependency that owns ``org``."""
    return org


def read_hint(value: str | None = CallArgument("hint", optional=True)) -> str | None:
    """A dependency with an optional reference, which adds no argument."""
    return value


OpenAccount = Annotated[Account, Depends(open_account)]
OpenOrg = Annotated[str, Depends(open_org)]
ReadHint = Annotated[str | None, Depends(read_hint)]


@pytest.fixture
def engine() -> RecordingEngine:
    """The embedded engine on the account policy, recording what it is asked."""
    OPENED.clear()
    return RecordingEngine(LocalPolicyEngine.from_dict(POLICY))


def _guard(mcp: FastMCP[Any], engine: RecordingEngine) -> None:
    mcp.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=lambda ctx: Principal(key="bob"))
    )


def _calls(engine: RecordingEngine) -> list[AuthzRequest]:
    """The tools/call requests the engine saw (the client also lists tools after a call)."""
    return [r for r in engine.requests if r.resource.attributes["mcp_method"] == "tools/call"]


def _called(engine: RecordingEngine) -> AuthzRequest:
    return _calls(engine)[-1]


def _arguments(engine: RecordingEngine) -> dict[str, Any]:
    attributes = _called(engine).resource.attributes
    return {name: value for name, value in attributes.items() if name.startswith("arg_")}


async def test_call_argument_is_a_resource_attribute_as_the_dependency_receives_it(
    engine: RecordingEngine,
) -> None:
    """A CallArgument-owned argument reaches the engine validated, its default filled in."""
    mcp: FastMCP[Any] = FastMCP("bank")

    @mcp.tool
    @require_permission()
    def show_account(account: OpenAccount, note: str = "") -> str:
        return f"{account.id}@{account.region}"

    _guard(mcp, engine)
    async with Client(mcp) as client:
        result = await client.call_tool("show_account", {"account_id": "42"})
        assert result.data == "42@eu"
        assert _arguments(engine) == {"arg_note": "", "arg_account_id": 42, "arg_region": "eu"}
        assert OPENED == [(42, "eu")]

        # Unseen, `not greater-than 100` would allow it.
        result = await client.call_tool(
            "show_account", {"account_id": "150", "region": "us"}, raise_on_error=False
        )
        assert result.is_error
        assert DENIED in str(result.content)
        assert _arguments(engine)["arg_account_id"] == 150
        assert _arguments(engine)["arg_region"] == "us"
    assert OPENED == [(42, "eu")]


async def test_abac_from_args_selects_a_call_argument(engine: RecordingEngine) -> None:
    """`@abac_from_args` may name an argument a CallArgument dependency owns."""
    mcp: FastMCP[Any] = FastMCP("bank")

    @mcp.tool
    @require_permission()
    @abac_from_args("account_id")
    def move_money(amount: float, account: OpenAccount) -> str:
        return f"moved {amount} from {account.id}"

    _guard(mcp, engine)
    async with Client(mcp) as client:
        result = await client.call_tool("move_money", {"amount": 5, "account_id": 42})
        assert result.data == "moved 5.0 from 42"
        assert _arguments(engine) == {"arg_account_id": 42}

        result = await client.call_tool(
            "move_money", {"amount": 5, "account_id": 101}, raise_on_error=False
        )
        assert result.is_error
        assert _arguments(engine) == {"arg_account_id": 101}


async def test_resource_key_from_a_call_argument(engine: RecordingEngine) -> None:
    """`key=` may name a CallArgument-owned argument; a resource role on its value decides."""
    mcp: FastMCP[Any] = FastMCP("bank")

    @mcp.tool
    @require_permission("read", resource="account", key="account_id")
    def read_account(account: OpenAccount) -> str:
        return f"account {account.id}"

    _guard(mcp, engine)
    async with Client(mcp) as client:
        assert (await client.call_tool("read_account", {"account_id": "42"})).data == "account 42"
        request = _called(engine)
        assert (request.action, request.resource.type, request.resource.key) == (
            "read",
            "account",
            "42",
        )

        result = await client.call_tool("read_account", {"account_id": 7}, raise_on_error=False)
        assert result.is_error
        assert DENIED in str(result.content)
        assert _called(engine).resource.key == "7"
    assert OPENED == [(42, "eu")]


async def test_tenant_from_a_call_argument(engine: RecordingEngine) -> None:
    """`tenant=` may name a CallArgument-owned argument; the request carries its value."""
    mcp: FastMCP[Any] = FastMCP("bank")

    @mcp.tool
    @require_permission("read", resource="account", key="account_id", tenant="org")
    def read_org_account(account: OpenAccount, org: OpenOrg) -> str:
        return f"{org}/{account.id}"

    _guard(mcp, engine)
    async with Client(mcp) as client:
        await client.call_tool(
            "read_org_account", {"account_id": 42, "org": "acme"}, raise_on_error=False
        )
    assert (_called(engine).resource.key, _called(engine).resource.tenant) == ("42", "acme")


async def test_invalid_call_argument_is_refused_before_the_engine(
    engine: RecordingEngine,
) -> None:
    """A value the dependency's annotation refuses is refused without asking the engine."""
    mcp: FastMCP[Any] = FastMCP("bank")

    @mcp.tool
    @require_permission()
    def show_account(account: OpenAccount) -> str:
        return f"{account.id}"

    _guard(mcp, engine)
    async with Client(mcp) as client:
        for sent in (0, "abc", [42]):
            result = await client.call_tool(
                "show_account", {"account_id": sent}, raise_on_error=False
            )
            assert result.is_error, sent
    assert _calls(engine) == []
    assert OPENED == []


def test_names_no_function_or_dependency_declares_are_still_refused() -> None:
    """A name neither the function nor a CallArgument of its dependencies declares fails."""

    def tool(account: OpenAccount, tip: ReadHint) -> str:
        return ""

    for decorate in (
        abac_from_args("acount_id"),
        require_permission(key="acount_id"),
        require_permission(tenant="acount_id"),
        # An optional reference adds no argument: FastMCP leaves it out of the schema.
        abac_from_args("hint"),
    ):
        with pytest.raises(DecoratorError, match="names no argument"):
            decorate(tool)
