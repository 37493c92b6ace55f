"""completion/complete reveals nothing the caller's lists would hide (attack 4).

With completion allowed, a caller once got suggestions for a prompt and a
resource template it may not see, and empty values for unknown ones: an
existence oracle. Now hidden, denied and unknown references answer alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from mcp import MCPError

from permit_guard import (
    FixedIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    public,
    require_permission,
)
from permit_guard.audit import DecisionEvent

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server_prompts": {"actions": ["read", "list"]},
        "mcp_server_resources": {"actions": ["read", "list"]},
    },
    "roles": {
        "admin": {"grants": {"mcp_server_prompts": ["*"], "mcp_server_resources": ["*"]}},
        "viewer": {"grants": {"mcp_server_prompts": ["list"], "mcp_server_resources": ["list"]}},
    },
    "users": {"alice": {"roles": ["admin"]}, "bob": {"roles": ["viewer"]}},
}

SECRET_PROMPT = {"type": "ref/prompt", "name": "secret_plan"}
SECRET_TEMPLATE = {"type": "ref/resource", "uri": "vault://{account}"}
UNKNOWN_PROMPT = {"type": "ref/prompt", "name": "no_such_prompt"}
UNKNOWN_TEMPLATE = {"type": "ref/resource", "uri": "nothing://{x}"}
OPEN_PROMPT = {"type": "ref/prompt", "name": "greeting"}


def build(
    identity: Callable[[Any], Principal | None], **options: Any
) -> tuple[FastMCP[Any], list[Any], list[DecisionEvent]]:
    """A server whose completion handler suggests values for anything it is asked."""
    mcp: FastMCP[Any] = FastMCP("completion")
    seen: list[Any] = []
    events: list[DecisionEvent] = []

    @mcp.prompt
    @require_permission()
    def secret_plan(target: str) -> str:
        return f"plan for {target}"

    @mcp.resource("vault://{account}")
    @require_permission()
    def vault(account: str) -> str:
        return account

    @mcp.prompt
    @public
    def greeting(name: str) -> str:
        return f"hello {name}"

    @mcp.completion
    def suggest(ref: Any, argument: Any, context: Any) -> list[str]:
        seen.append(ref)
        return ["acme-1", "acme-2"]

    mcp.add_middleware(
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY),
            identity=identity,
            audit_sink=events.append,
            **options,
        )
    )
    return mcp, seen, events


async def values(mcp: FastMCP[Any], ref: dict[str, str], argument: str) -> list[str]:
    async with Client(mcp) as client:
        result = await client.complete(ref, {"name": argument, "value": "a"})
    return list(result.values)


def nobody(context: Any) -> None:
    """No valid credentials."""
    return


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"unknown_methods": "allow", "known_methods": ["prompts/list", "prompts/get"]},
    ],
    ids=["defaults", "unknown-methods-allowed"],
)
@pytest.mark.parametrize(
    ("hidden", "unknown", "argument"),
    [(SECRET_PROMPT, UNKNOWN_PROMPT, "target"), (SECRET_TEMPLATE, UNKNOWN_TEMPLATE, "account")],
    ids=["prompt", "template"],
)
async def test_hidden_references_complete_like_unknown_ones(
    options: dict[str, Any], hidden: dict[str, str], unknown: dict[str, str], argument: str
) -> None:
    """A reference the caller's list hides gets the empty answer an unknown one gets."""
    for identity in (FixedIdentity("bob"), nobody):
        mcp, seen, _ = build(identity, **options)
        assert await values(mcp, hidden, argument) == []
        assert await values(mcp, unknown, argument) == []
        # The server's handler never learns the hidden (or unknown) name.
        names = {getattr(ref, "name", None) or str(getattr(ref, "uri", "")) for ref in seen}
        assert not names & {hidden.get("name"), hidden.get("uri"), unknown.get("name")}


async def test_visible_references_still_complete() -> None:
    """The caller's own prompts and templates, and @public ones, complete as before."""
    mcp, seen, events = build(FixedIdentity("alice"))
    assert await values(mcp, SECRET_PROMPT, "target") == ["acme-1", "acme-2"]
    assert await values(mcp, SECRET_TEMPLATE, "account") == ["acme-1", "acme-2"]
    bob, _, _ = build(FixedIdentity("bob"))
    assert await values(bob, OPEN_PROMPT, "name") == ["acme-1", "acme-2"]
    assert len(seen) == 2
    completions = [e for e in events if e.method == "completion/complete"]
    assert [e.allowed for e in completions] == [True, True]


async def test_completion_outside_known_methods_is_refused() -> None:
    """Left out of known_methods (and unknown methods denied), completion is refused as before."""
    mcp, seen, _ = build(FixedIdentity("alice"), known_methods=["prompts/list", "prompts/get"])
    with pytest.raises(MCPError, match="not allowed"):
        await values(mcp, SECRET_PROMPT, "target")
    assert seen == []
