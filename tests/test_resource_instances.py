"""Resource instances: server-side facts about an instance decide, not what the client says.

Permit's model: a known instance (``"project:acme-1"``) lives in its own tenant
and has its own attributes. A request naming it is decided in that tenant,
whatever tenant the caller or the arguments name, and its attributes win over
any the client sent under the same name.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client, FastMCP

from permit_guard import (
    AuthzRequest,
    DirectoryError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PermitPDPEngine,
    PolicyFileError,
    Principal,
    Resource,
    fixed,
    require_permission,
)
from permit_guard.testing import LocalPDP
from tests.models import workspace_owned_projects

POLICY: dict[str, Any] = {
    "resources": {"project": {"actions": ["read", "close"]}},
    "resource_sets": {
        "open_projects": {
            "resource": "project",
            "condition": {"allOf": [{"resource.archived": {"equals": False}}]},
        }
    },
    "roles": {
        "viewer": {"grants": {"project": ["read"]}},
        "editor": {"grants": {"open_projects": ["close"]}},
    },
    "users": {
        "alice": {"roles": {"acme": ["viewer", "editor"]}},
        "carol": {"roles": {"globex": ["viewer", "editor"]}},
    },
    "resource_instances": {
        "project:acme-1": {"tenant": "acme", "attributes": {"archived": False}},
        "project:acme-2": {"tenant": "acme", "attributes": {"archived": True}},
    },
}

KEY = "permit_key_FAKE_instances"


def ask(user: str, action: str, key: str, *, tenant: str, **attributes: Any) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type="project", key=key, tenant=tenant, attributes=attributes),
    )


CASES = [
    # (request, allowed)
    (ask("carol", "read", "acme-1", tenant="globex"), False),  # her roles are in globex only
    (ask("alice", "read", "acme-1", tenant="globex"), True),  # the instance's tenant decides
    (ask("alice", "close", "acme-1", tenant="acme", archived=True), True),  # facts win
    (ask("alice", "close", "acme-2", tenant="acme", archived=False), False),  # archived
    (ask("carol", "read", "globex-9", tenant="globex"), True),  # unknown instance: as sent
]


@pytest.mark.parametrize(("request_", "allowed"), CASES)
def test_the_instance_tenant_and_attributes_decide(request_: AuthzRequest, allowed: bool) -> None:
    """A known instance is decided in its tenant, with its own attributes winning."""
    assert LocalPolicyEngine.from_dict(POLICY).decide(request_).allowed is allowed


async def test_the_pdp_engine_against_local_pdp_decides_alike() -> None:
    """The same requests through PermitPDPEngine -> LocalPDP give the same decisions."""
    with LocalPDP.from_dict(POLICY, api_key=KEY) as pdp:
        async with PermitPDPEngine(pdp.url, KEY) as engine:
            decisions = await engine.check_many([request for request, _ in CASES])
    assert [d.allowed for d in decisions] == [allowed for _, allowed in CASES]


async def test_tenant_isolation_through_a_real_server() -> None:
    """carol@globex cannot read acme's project through a tool whose tenant she names."""
    mcp: FastMCP[Any] = FastMCP("tracker")

    @mcp.tool
    @require_permission("read", resource="project", key="project_id", tenant=fixed("globex"))
    def get_project(project_id: str) -> str:
        return f"project {project_id}"

    caller = {"key": "carol"}
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY),
        identity=lambda context: Principal(key=caller["key"]),
    ).attach(mcp)

    async def get(client: Client[Any], project_id: str) -> bool:
        arguments = {"project_id": project_id}
        result = await client.call_tool("get_project", arguments, raise_on_error=False)
        return not result.is_error

    async with Client(mcp) as client:
        stolen, own = await get(client, "acme-1"), await get(client, "globex-9")
        caller["key"] = "alice"
        allowed = await get(client, "acme-1")
    assert (stolen, own, allowed) == (False, True, True)


@pytest.mark.parametrize(
    ("instances", "problem"),
    [
        ({"task:1": {}}, "resource_instances['task:1']: unknown resource type 'task'"),
        ({"project": {}}, "resource_instances.project: expected '<resource type>:<instance key>'"),
        ({"project:1": {"tenant": ""}}, "resource_instances['project:1'].tenant"),
    ],
)
def test_instances_are_checked_at_load(instances: dict[str, Any], problem: str) -> None:
    """An instance of an unknown type, a malformed key or an empty tenant is a load error."""
    with pytest.raises(PolicyFileError) as error:
        LocalPolicyEngine.from_dict({**POLICY, "resource_instances": instances})
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


@pytest.mark.parametrize("name", ["mcp_method", "tool_name", "prompt_name", "resource_uri"])
async def test_an_instance_cannot_carry_an_attribute_the_guard_sets(name: str) -> None:
    """``mcp_method: tools/list`` on an instance would judge its calls by the listing rule."""
    bad = {"project:acme-9": {"tenant": "acme", "attributes": {name: "tools/list"}}}
    with pytest.raises(PolicyFileError) as error:
        LocalPolicyEngine.from_dict({**POLICY, "resource_instances": bad})
    assert any(name in p and "the guard sets" in p for p in error.value.problems)

    engine = LocalPolicyEngine.from_dict(POLICY)
    created = {"key": "acme-9", "resource": "project", "tenant": "acme"}
    with pytest.raises(DirectoryError, match="the guard sets"):
        await engine.api.resource_instances.create({**created, "attributes": {name: "x"}})
    await engine.api.resource_instances.create(created)
    with pytest.raises(DirectoryError, match="the guard sets"):
        await engine.api.resource_instances.update(
            "project:acme-9", {"attributes": {name: "tools/list"}}
        )
    # Refused changes change nothing: the instance has no attributes.
    assert engine.facts.instances["project", "acme-9"] == ("acme", {})


TENANTED: dict[str, Any] = {
    "resources": workspace_owned_projects("delete"),
    "users": {"gina": {"resource_roles": {"workspace:globex-hq": ["admin"]}}},
    "resource_instances": {
        "workspace:globex-hq": {"tenant": "globex"},
        "project:acme-1": {"tenant": "acme"},
    },
}
CROSSING = {"subject": "workspace:globex-hq", "relation": "parent", "object": "project:acme-1"}


async def test_a_tuple_cannot_cross_tenants() -> None:
    """globex's workspace admin must not derive ownership of an acme project through a tuple."""
    with pytest.raises(PolicyFileError) as error:
        LocalPolicyEngine.from_dict({**TENANTED, "relationships": [CROSSING]})
    assert error.value.problems == [
        "relationships[0]: a tuple lives in one tenant: workspace:globex-hq is in 'globex', "
        "project:acme-1 is in 'acme'"
    ]
    engine = LocalPolicyEngine.from_dict(TENANTED)
    with pytest.raises(DirectoryError, match="a tuple lives in one tenant"):
        await engine.api.relationship_tuples.create(CROSSING)
    # Nor by linking first and making the instance known in another tenant after.
    await engine.api.relationship_tuples.create({**CROSSING, "object": "project:acme-2"})
    with pytest.raises(DirectoryError, match="linked to workspace:globex-hq"):
        await engine.api.resource_instances.create(
            {"key": "acme-2", "resource": "project", "tenant": "acme"}
        )
    denied = engine.decide(ask("gina", "delete", "acme-1", tenant="acme"))
    assert not denied.allowed
