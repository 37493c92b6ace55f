"""Data files: the facts apart from the policy, written by engine.save and read back.

A data file holds users, resource instances and relationship tuples; given
with a policy, its sections replace the policy's own, and it is checked
against the policy's model. Saving what the directory changed and loading it
again gives the same decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastmcp import Client, FastMCP

from permit_guard import (
    AuthzRequest,
    ConfigurationError,
    DirectoryError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PolicyFileError,
    Principal,
    Resource,
    require_permission,
)
from tests.models import workspace_owned_projects

POLICY: dict[str, Any] = {
    "resources": workspace_owned_projects("read", "delete"),
    "roles": {"member": {"grants": {"project": ["read"]}}},
    "users": {"alice": {"roles": {"acme": ["member"]}, "attributes": {"level": 3}}},
}


def write_policy(tmp_path: Path, data: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data or POLICY))
    return path


def ask(user: str, action: str, key: str, tenant: str = "acme") -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type="project", key=key, tenant=tenant),
    )


QUESTIONS = [
    ask("alice", "read", "p1"),
    ask("bob", "delete", "p1"),
    ask("carol", "delete", "p1"),
    ask("carol", "delete", "p2"),
    ask("bob", "read", "p1", tenant="globex"),
]


async def change(engine: LocalPolicyEngine) -> None:
    api = engine.api
    await api.resource_instances.create(
        {"key": "p1", "resource": "project", "tenant": "acme", "attributes": {"stage": 2}}
    )
    await api.role_assignments.assign(
        {"user": "bob", "role": "owner", "tenant": "acme", "resource_instance": "project:p1"}
    )
    await api.role_assignments.assign(
        {"user": "carol", "role": "admin", "tenant": "acme", "resource_instance": "workspace:w1"}
    )
    await api.relationship_tuples.create(
        {"subject": "workspace:w1", "relation": "parent", "object": "project:p1"}
    )
    await api.role_assignments.unassign({"user": "alice", "role": "member", "tenant": "acme"})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
async def test_saved_facts_load_back_to_the_same_decisions(tmp_path: Path, suffix: str) -> None:
    """Changes through engine.api, saved and loaded with the policy, decide alike."""
    policy = write_policy(tmp_path)
    engine = LocalPolicyEngine.from_file(policy)
    before = [engine.decide(q).allowed for q in QUESTIONS]
    await change(engine)
    after = [engine.decide(q).allowed for q in QUESTIONS]
    assert before != after
    assert after == [False, True, True, False, True]

    data = tmp_path / f"facts{suffix}"
    engine.save(data)
    reloaded = LocalPolicyEngine.from_file(policy, data=data)
    assert [reloaded.decide(q).allowed for q in QUESTIONS] == after
    assert [reloaded.decide(q).reason for q in QUESTIONS] == [
        engine.decide(q).reason for q in QUESTIONS
    ]
    assert reloaded.facts == engine.facts
    assert reloaded.source == f"{policy} + {data}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["policy.yaml", data.name])  # noqa: ASYNC240


async def test_a_guarded_server_reads_its_data_file_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PERMIT_MCP_POLICY_DATA_FILE gives the middleware's engine its facts."""
    source = LocalPolicyEngine.from_dict(POLICY)
    await change(source)
    data = tmp_path / "facts.yaml"
    source.save(data)
    monkeypatch.setenv("PERMIT_MCP_POLICY_FILE", str(write_policy(tmp_path)))
    monkeypatch.setenv("PERMIT_MCP_POLICY_DATA_FILE", str(data))

    mcp: FastMCP[Any] = FastMCP("files")

    @mcp.tool
    @require_permission("delete", resource="project", key="project_id")
    def delete_project(project_id: str) -> str:
        return f"deleted {project_id}"

    caller = {"key": "carol"}
    PermitMcpMiddleware(identity=lambda context: Principal(key=caller["key"])).attach(mcp)
    async with Client(mcp) as client:
        derived = await client.call_tool(
            "delete_project", {"project_id": "p1"}, raise_on_error=False
        )
        other = await client.call_tool("delete_project", {"project_id": "p2"}, raise_on_error=False)
    assert (derived.is_error, other.is_error) == (False, True)


def test_a_data_file_without_a_policy_file_is_a_configuration_error(tmp_path: Path) -> None:
    """The facts need a model to be checked against."""
    data = tmp_path / "facts.yaml"
    data.write_text("users: {}\n")
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_POLICY_FILE"):
        PermitMcpMiddleware(policy_data_file=str(data), permit_api_key="permit_key_FAKE")


@pytest.mark.parametrize(
    ("facts", "problem"),
    [
        ({"roles": {}}, "roles: not a data section"),
        ({"users": {"dan": {"roles": ["boss"]}}}, "users.dan.roles: unknown role 'boss'"),
        (
            {
                "relationships": [
                    {"subject": "project:a", "relation": "parent", "object": "project:b"}
                ]
            },
            "relationships[0].relation: relation 'parent' of 'project' links a 'workspace'",
        ),
        ([1, 2], "top level: expected a mapping"),
    ],
)
def test_a_bad_data_file_names_the_problem(tmp_path: Path, facts: object, problem: str) -> None:
    """A data file is checked like the policy, against the policy's model."""
    data = tmp_path / "facts.yaml"
    data.write_text(yaml.safe_dump(facts))
    with pytest.raises(PolicyFileError) as error:
        LocalPolicyEngine.from_file(write_policy(tmp_path), data=data)
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


def test_the_data_sections_replace_the_policys_own(tmp_path: Path) -> None:
    """alice is a member in the policy; a data file without her leaves her nothing."""
    data = tmp_path / "facts.yaml"
    data.write_text(yaml.safe_dump({"users": {"bob": {"roles": {"acme": ["member"]}}}}))
    engine = LocalPolicyEngine.from_file(write_policy(tmp_path), data=data)
    assert not engine.decide(ask("alice", "read", "p9")).allowed
    assert engine.decide(ask("bob", "read", "p9")).allowed


def test_saving_to_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    """The extension chooses the format; anything else is an error, and nothing is written."""
    with pytest.raises(PolicyFileError, match=r"unsupported file extension '\.txt'"):
        LocalPolicyEngine.from_dict(POLICY).save(tmp_path / "facts.txt")
    assert list(tmp_path.iterdir()) == []


async def test_odd_unicode_in_names_survives_a_yaml_round_trip(tmp_path: Path) -> None:
    """U+0085 in a user or tenant name is folded by YAML readers unless written escaped."""
    engine = LocalPolicyEngine.from_dict(POLICY)
    await engine.api.role_assignments.assign(
        {"user": "carol\x85", "role": "member", "tenant": "acme\x85eu"}
    )
    data = tmp_path / "facts.yaml"
    engine.save(data)
    reloaded = LocalPolicyEngine.from_file(write_policy(tmp_path), data=data)
    assert reloaded.decide(ask("carol\x85", "read", "p9", tenant="acme\x85eu")).allowed
    assert not reloaded.decide(ask("carol ", "read", "p9", tenant="acme eu")).allowed
    assert reloaded.facts == engine.facts


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_number_of_thousands_of_digits_is_a_policy_error(tmp_path: Path, suffix: str) -> None:
    """Python refuses to read such an integer; the loader says so instead of crashing."""
    path = tmp_path / f"policy{suffix}"
    path.write_text('{"users": {"bob": {"attributes": {"n": ' + "9" * 5000 + "}}}}")
    with pytest.raises(PolicyFileError, match="value cannot be read"):
        LocalPolicyEngine.from_file(path)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("2026-12-02", "not date"), ("!!binary aGk=", "not bytes"), ("!!set {a: null}", "not set")],
)
def test_attribute_values_in_the_file_are_json_values(
    tmp_path: Path, value: str, problem: str
) -> None:
    """A YAML date, bytes or set is no value a PDP, a condition or a data file can carry."""
    path = tmp_path / "policy.yaml"
    path.write_text(f"users:\n  bob:\n    attributes:\n      since: {value}\n")
    with pytest.raises(PolicyFileError) as error:
        LocalPolicyEngine.from_file(path)
    assert any(problem in p for p in error.value.problems), error.value.problems


async def test_a_number_beyond_64_bits_is_refused_whole_and_audited(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Nothing lands that could not be audited or saved; the refusal is one WARNING line."""
    engine = LocalPolicyEngine.from_dict(POLICY)
    huge = {"key": "p1", "resource": "project", "tenant": "acme", "attributes": {"n": 10**5000}}
    with (
        caplog.at_level("INFO", logger="permit_guard.audit"),
        pytest.raises(DirectoryError, match="64 bits"),
    ):
        await engine.api.resource_instances.create(huge)
    assert ("project", "p1") not in engine.facts.instances
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    engine.save(tmp_path / "facts.json")  # still saves
