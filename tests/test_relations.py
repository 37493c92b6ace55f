"""Relations, role derivation and the runtime directory of the embedded engine, by example.

The policy: a workspace's admin edits its folders, a folder's editor edits the
folders and files below it (``folder -> folder -> file``). Each derivation is
named in the decision's reason; every reference is checked at load with its
location; ``engine.api`` changes the facts for the next decision, refuses what
the file would refuse, takes the real ``permit`` SDK's models, is safe under
concurrent tasks and threads, and audits every change and refusal.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from permit_guard import (
    AuthzRequest,
    Decision,
    DirectoryError,
    LocalPolicyEngine,
    PolicyFileError,
    Principal,
    Resource,
)
from permit_guard.engines.local.directory import Directory
from permit_guard.engines.local.relations import MAX_CHAIN

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit import Permit
    from permit.api.models import (
        RelationshipTupleCreate,
        RelationshipTupleDelete,
        ResourceInstanceCreate,
        ResourceInstanceUpdate,
        RoleAssignmentCreate,
        RoleAssignmentRemove,
        UserCreate,
    )


def editor_via(*rules: tuple[str, str, str]) -> dict[str, Any]:
    """An ``editor`` role in Permit's long form, derived by ``(role, on_resource, relation)``."""
    return {
        "permissions": ["read", "edit"],
        "granted_to": {
            "users_with_role": [
                {"role": role, "on_resource": on, "linked_by_relation": relation}
                for role, on, relation in rules
            ]
        },
    }


def base() -> dict[str, Any]:
    """The policy every test starts from (a fresh copy)."""
    return {
        "resources": {
            "workspace": {"actions": ["manage", "read"], "roles": {"admin": ["manage", "read"]}},
            "folder": {
                "actions": ["read", "edit"],
                "relations": {"parent": "folder", "workspace": "workspace"},
                "roles": {
                    "editor": editor_via(
                        ("editor", "folder", "parent"), ("admin", "workspace", "workspace")
                    ),
                    "viewer": ["read"],
                },
            },
            "file": {
                "actions": ["read", "edit"],
                "relations": {"parent": "folder", "shared_from": "folder"},
                "roles": {"editor": editor_via(("editor", "folder", "parent"))},
            },
        },
        "resource_sets": {
            "open_files": {
                "resource": "file",
                "condition": {"allOf": [{"resource.locked": {"equals": False}}]},
            }
        },
        "roles": {
            "reader": {"grants": {"file": ["read"]}},
            "writer": {"grants": {"open_files": ["edit"]}},
        },
        "users": {
            "ann": {"resource_roles": {"workspace:w": ["admin"]}},
            "bob": {"resource_roles": {"folder:sub": ["editor"]}},
            "carol": {"roles": {"acme": ["reader", "writer"]}},
            "dave": {"resource_roles": {"folder:top": ["viewer"]}},
        },
        "resource_instances": {
            "folder:sub": {"tenant": "default"},
            "file:acme-doc": {"tenant": "acme", "attributes": {"locked": False}},
        },
        "relationships": [
            {"subject": "workspace:w", "relation": "workspace", "object": "folder:top"},
            {"subject": "folder:top", "relation": "parent", "object": "folder:sub"},
            {"subject": "folder:sub", "relation": "parent", "object": "file:x"},
            {"subject": "folder:sub", "relation": "shared_from", "object": "file:z"},
        ],
    }


def engine_of(policy: dict[str, Any] | None = None) -> LocalPolicyEngine:
    return LocalPolicyEngine.from_dict(base() if policy is None else policy)


def request(
    user: str, action: str, type_name: str, key: str, tenant: str = "default"
) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type=type_name, key=key, tenant=tenant),
    )


def list_request(user: str, action: str, type_name: str) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type=type_name, attributes={"mcp_method": "tools/list"}),
    )


def ask(
    engine: LocalPolicyEngine, user: str, action: str, instance: str, tenant: str = "default"
) -> Decision:
    type_name, _, key = instance.partition(":")
    return engine.decide(request(user, action, type_name, key, tenant))


USERS = ("ann", "bob", "carol", "dave", "erin")
INSTANCES = (
    "workspace:w",
    "folder:top",
    "folder:sub",
    "folder:new",
    "file:x",
    "file:y",
    "file:z",
    "file:acme-doc",
)
ACTIONS = {"workspace": ("manage", "read"), "folder": ("read", "edit"), "file": ("read", "edit")}


def table(engine: LocalPolicyEngine) -> dict[tuple[str, ...], Decision]:
    """Every user's decision on every instance and action, and on every list check."""
    found: dict[tuple[str, ...], Decision] = {}
    for user in USERS:
        for instance in INSTANCES:
            for action in ACTIONS[instance.partition(":")[0]]:
                found[user, action, instance] = ask(engine, user, action, instance)
        for type_name, actions in ACTIONS.items():
            for action in actions:
                found[user, action, type_name, "list"] = engine.decide(
                    list_request(user, action, type_name)
                )
    return found


def assignment(
    user: str, role: str, instance: str | None = None, tenant: str = "default"
) -> dict[str, Any]:
    payload: dict[str, Any] = {"user": user, "role": role, "tenant": tenant}
    if instance is not None:
        payload["resource_instance"] = instance
    return payload


def link(subject: str, relation: str, obj: str) -> dict[str, str]:
    return {"subject": subject, "relation": relation, "object": obj}


# -- derivation --------------------------------------------------------------------------------


def test_a_role_is_derived_through_one_relation() -> None:
    """A workspace's admin is editor of the folder its relation links; the reason says so."""
    decision = ask(engine_of(), "ann", "edit", "folder:top")
    assert decision == Decision(
        allowed=True,
        reason=(
            "resource role 'editor' on folder:top grants edit "
            "(derived: 'admin' on workspace:w -workspace-> 'editor' on folder:top)"
        ),
    )


@pytest.mark.parametrize("tenant", ["default", "acme"])
def test_derivations_chain_through_two_relations(tenant: str) -> None:
    """workspace -> folder -> folder -> file: the admin edits the file, whatever the tenant."""
    decision = ask(engine_of(), "ann", "edit", "file:x", tenant)
    assert decision == Decision(
        allowed=True,
        reason=(
            "resource role 'editor' on file:x grants edit (derived: 'admin' on workspace:w "
            "-workspace-> 'editor' on folder:top -parent-> 'editor' on folder:sub "
            "-parent-> 'editor' on file:x)"
        ),
    )


def test_a_derivation_starts_from_the_role_assigned_nearest() -> None:
    """An editor assigned on a folder: no path on it, a one-step path to its file."""
    engine = engine_of()
    assert ask(engine, "bob", "edit", "folder:sub").reason == (
        "resource role 'editor' on folder:sub grants edit"
    )
    assert ask(engine, "bob", "read", "file:x").reason == (
        "resource role 'editor' on file:x grants read "
        "(derived: 'editor' on folder:sub -parent-> 'editor' on file:x)"
    )


@pytest.mark.parametrize(
    ("user", "action", "instance"),
    [
        ("ann", "edit", "file:z"),  # linked by shared_from, which no rule names
        ("ann", "read", "file:z"),
        ("bob", "edit", "folder:top"),  # the tuple runs from top to sub, not back
        ("bob", "read", "workspace:w"),  # nothing derives upwards
        ("dave", "read", "file:x"),  # viewer is not the role the rule names
        ("dave", "edit", "folder:sub"),
        ("ann", "edit", "file:y"),  # no tuple at all
        ("ann", "edit", "folder:new"),
    ],
)
def test_a_derivation_does_not_cross_an_unrelated_tuple(
    user: str, action: str, instance: str
) -> None:
    """A role is derived only along the relation and from the role a rule names."""
    decision = ask(engine_of(), user, action, instance)
    assert not decision.allowed, decision.reason


def test_listing_follows_derivations() -> None:
    """A list check passes for a granting role held (or derived) on some instance of the type."""
    engine = engine_of()
    derived = engine.decide(list_request("ann", "edit", "file"))
    assert derived == Decision(
        allowed=True,
        reason=(
            "resource role 'editor' on file:x grants edit (listing: held on some instance; "
            "derived: 'admin' on workspace:w -workspace-> 'editor' on folder:top -parent-> "
            "'editor' on folder:sub -parent-> 'editor' on file:x)"
        ),
    )
    assert engine.decide(list_request("bob", "edit", "folder")).reason == (
        "resource role 'editor' on folder:sub grants edit (listing: held on some instance)"
    )
    assert not engine.decide(list_request("dave", "edit", "file")).allowed
    assert not engine.decide(list_request("erin", "read", "file")).allowed
    assert not engine.decide(list_request("ann", "manage", "folder")).allowed


async def test_listing_follows_the_tuples_at_run_time() -> None:
    """Deleting the tuple a listing derivation used withdraws the list entry."""
    engine = engine_of()
    await engine.api.relationship_tuples.delete(link("folder:sub", "parent", "file:x"))
    assert not engine.decide(list_request("ann", "edit", "file")).allowed
    assert engine.decide(list_request("ann", "edit", "folder")).allowed


def test_the_short_and_the_long_form_decide_alike() -> None:
    """``[read, edit]``, ``{permissions: [read, edit]}`` and an empty ``granted_to`` agree."""
    short = base()
    short["resources"]["folder"]["roles"]["viewer"] = ["read"]
    long_form = base()
    long_form["resources"]["folder"]["roles"]["viewer"] = {"permissions": ["read"]}
    empty = base()
    empty["resources"]["folder"]["roles"]["viewer"] = {
        "permissions": ["read"],
        "granted_to": {"users_with_role": []},
    }
    # And the other way round: a plain role in the short form, the rest alike.
    plain = base()
    plain["resources"]["workspace"]["roles"]["admin"] = {"permissions": ["manage", "read"]}
    expected = table(engine_of(short))
    assert table(engine_of(long_form)) == expected
    assert table(engine_of(empty)) == expected
    assert table(engine_of(plain)) == expected
    assert expected["dave", "read", "folder:top"].reason == (
        "resource role 'viewer' on folder:top grants read"
    )


def chain(length: int) -> dict[str, Any]:
    """``folder:f0 -> ... -> folder:f<length>``, ann the editor of ``f0``."""
    policy = base()
    policy["users"] = {"ann": {"resource_roles": {"folder:f0": ["editor"]}}}
    policy["resource_instances"] = {}
    policy["relationships"] = [
        link(f"folder:f{i}", "parent", f"folder:f{i + 1}") for i in range(length)
    ]
    return policy


def test_a_chain_of_max_chain_tuples_loads_and_derives_to_its_end() -> None:
    """Exactly MAX_CHAIN tuples: loaded, and derived through every one, keyed and listed."""
    engine = engine_of(chain(MAX_CHAIN))
    keyed = ask(engine, "ann", "edit", f"folder:f{MAX_CHAIN}")
    assert keyed.allowed
    assert keyed.reason.count("-parent->") == MAX_CHAIN
    assert engine.decide(list_request("ann", "edit", "folder")).allowed


# -- load errors -------------------------------------------------------------------------------


def rules_of(policy: dict[str, Any], type_name: str = "file") -> list[dict[str, str]]:
    rules: list[dict[str, str]] = policy["resources"][type_name]["roles"]["editor"]["granted_to"][
        "users_with_role"
    ]
    return rules


RULE = "resources.file.roles.editor.granted_to.users_with_role[0]"

LOAD_ERRORS: list[tuple[str, Callable[[dict[str, Any]], object], list[str]]] = [
    (
        "a relation naming an unknown type",
        lambda p: p["resources"]["file"]["relations"].update(owner="person"),
        [
            "resources.file.relations.owner: unknown resource type 'person' "
            "(known: workspace, folder, file)"
        ],
    ),
    (
        "a derivation naming an unknown on_resource",
        lambda p: rules_of(p)[0].update(on_resource="folders"),
        [
            f"{RULE}.on_resource: unknown resource type 'folders' "
            "(did you mean 'folder'? known: workspace, folder, file)"
        ],
    ),
    (
        "a role the related type does not have",
        lambda p: rules_of(p)[0].update(role="owner"),
        [
            f"{RULE}.role: unknown resource role 'owner' on resource type 'folder' "
            "(known: editor, viewer)"
        ],
    ),
    (
        "an undeclared linked_by_relation",
        lambda p: rules_of(p)[0].update(linked_by_relation="child"),
        [
            f"{RULE}.linked_by_relation: unknown relation 'child' on resource type 'file' "
            "(known: parent, shared_from)"
        ],
    ),
    (
        "a relation whose subject type is not on_resource",
        lambda p: rules_of(p)[0].update(role="admin", on_resource="workspace"),
        [
            f"{RULE}.linked_by_relation: relation 'parent' of 'file' links a 'folder', "
            "not a 'workspace'"
        ],
    ),
    (
        "a tuple subject without a colon",
        lambda p: p["relationships"][0].update(subject="workspace"),
        ["relationships[0].subject: expected '<resource type>:<instance key>', e.g. 'invoice:42'"],
    ),
    (
        "a tuple object without a type",
        lambda p: p["relationships"][1].update(object=":sub"),
        ["relationships[1].object: expected '<resource type>:<instance key>', e.g. 'invoice:42'"],
    ),
    (
        "a tuple object without a key",
        lambda p: p["relationships"][1].update(object="folder:"),
        ["relationships[1].object: expected '<resource type>:<instance key>', e.g. 'invoice:42'"],
    ),
    (
        "a tuple of an unknown type",
        lambda p: p["relationships"][2].update(subject="project:p"),
        [
            "relationships[2].subject: unknown resource type 'project' "
            "(known: workspace, folder, file)"
        ],
    ),
    (
        "a tuple with an undeclared relation",
        lambda p: p["relationships"][2].update(relation="child"),
        [
            "relationships[2].relation: unknown relation 'child' on resource type 'file' "
            "(known: parent, shared_from)"
        ],
    ),
    (
        "a tuple whose subject has the wrong type",
        lambda p: p["relationships"][2].update(subject="workspace:w"),
        [
            "relationships[2].relation: relation 'parent' of 'file' links a 'folder', "
            "not a 'workspace'"
        ],
    ),
    (
        "a cycle of two tuples",
        lambda p: p["relationships"].append(link("folder:sub", "parent", "folder:top")),
        ["relationships: the tuples form a cycle: folder:top -> folder:sub -> folder:top"],
    ),
    (
        "a tuple linking an instance to itself",
        lambda p: p.update(relationships=[link("folder:a", "parent", "folder:a")]),
        ["relationships: the tuples form a cycle: folder:a -> folder:a"],
    ),
    (
        "a chain longer than MAX_CHAIN",
        lambda p: p.update(relationships=chain(MAX_CHAIN + 1)["relationships"]),
        [
            f"relationships: a chain of more than {MAX_CHAIN} tuples leads up from "
            f"folder:f{MAX_CHAIN + 1} (at most {MAX_CHAIN})"
        ],
    ),
]


@pytest.mark.parametrize(
    ("change", "problems"),
    [pytest.param(change, problems, id=label) for label, change, problems in LOAD_ERRORS],
)
def test_load_errors_name_their_location(
    change: Callable[[dict[str, Any]], object], problems: list[str]
) -> None:
    """Each broken reference is one problem, at its location, naming what is wrong."""
    policy = base()
    change(policy)
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_dict(policy)
    assert caught.value.problems == problems


def test_a_longer_cycle_names_every_instance_on_it() -> None:
    """A cycle through three folders names all three, and where it closes."""
    policy = base()
    policy["relationships"] = [
        link("folder:a", "parent", "folder:b"),
        link("folder:b", "parent", "folder:c"),
        link("folder:c", "parent", "folder:a"),
    ]
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_dict(policy)
    (problem,) = caught.value.problems
    prefix = "relationships: the tuples form a cycle: "
    assert problem.startswith(prefix)
    names = problem.removeprefix(prefix).split(" -> ")
    assert names[0] == names[-1]
    assert sorted(names[:-1]) == ["folder:a", "folder:b", "folder:c"]


# -- the runtime directory: each change decides the next request -------------------------------


@pytest.mark.parametrize("part", ["role_assignments", "users"])
async def test_assign_and_unassign_change_the_next_decision(part: str) -> None:
    """An editor assigned on a folder edits its file at once; unassigned, no longer."""
    engine = engine_of()
    directory = getattr(engine.api, part)
    assign = directory.assign if part == "role_assignments" else directory.assign_role
    unassign = directory.unassign if part == "role_assignments" else directory.unassign_role
    assert not ask(engine, "erin", "edit", "file:x").allowed
    created = await assign(assignment("erin", "editor", "folder:top"))
    assert created == assignment("erin", "editor", "folder:top")
    after = ask(engine, "erin", "edit", "file:x")
    assert after.allowed
    assert "derived: 'editor' on folder:top -parent-> 'editor' on folder:sub" in after.reason
    await unassign(assignment("erin", "editor", "folder:top"))
    assert not ask(engine, "erin", "edit", "file:x").allowed


async def test_a_tenant_role_assignment_changes_the_next_decision() -> None:
    """A role assigned in a tenant grants there at once, and only there."""
    engine = engine_of()
    await engine.api.role_assignments.assign(assignment("erin", "reader", tenant="globex"))
    assert ask(engine, "erin", "read", "file:y", "globex").allowed
    assert not ask(engine, "erin", "read", "file:y", "default").allowed
    await engine.api.role_assignments.unassign(assignment("erin", "reader", tenant="globex"))
    assert not ask(engine, "erin", "read", "file:y", "globex").allowed


async def test_tuple_create_and_delete_change_the_next_decision() -> None:
    """A new tuple extends a derivation to the next request; deleting it withdraws it."""
    engine = engine_of()
    tuple_ = link("folder:sub", "parent", "file:y")
    assert not ask(engine, "ann", "edit", "file:y").allowed
    assert await engine.api.relationship_tuples.create(tuple_) == tuple_
    assert ask(engine, "ann", "edit", "file:y").allowed
    await engine.api.relationship_tuples.delete(tuple_)
    assert not ask(engine, "ann", "edit", "file:y").allowed
    # The middle of a chain: without top -> sub, nothing below sub comes from the workspace.
    await engine.api.relationship_tuples.delete(link("folder:top", "parent", "folder:sub"))
    assert ask(engine, "ann", "edit", "folder:top").allowed
    assert not ask(engine, "ann", "edit", "file:x").allowed
    assert ask(engine, "bob", "edit", "file:x").allowed


async def test_instance_create_decides_in_its_tenant_from_the_next_request() -> None:
    """A created instance is decided in its own tenant, whatever tenant the request names."""
    engine = engine_of()
    assert not ask(engine, "carol", "read", "file:new", "default").allowed
    created = await engine.api.resource_instances.create(
        {"key": "new", "resource": "file", "tenant": "acme", "attributes": {"locked": False}}
    )
    assert created == {
        "key": "new",
        "resource": "file",
        "tenant": "acme",
        "attributes": {"locked": False},
    }
    decision = ask(engine, "carol", "read", "file:new", "default")
    assert decision.allowed
    assert "tenant 'acme'" in decision.reason
    assert ask(engine, "carol", "edit", "file:new", "default").allowed


async def test_instance_update_changes_the_next_decision() -> None:
    """Replacing an instance's attributes re-decides resource-set grants at once."""
    engine = engine_of()
    assert ask(engine, "carol", "edit", "file:acme-doc").allowed
    updated = await engine.api.resource_instances.update(
        "file:acme-doc", {"attributes": {"locked": True}}
    )
    assert updated == {
        "key": "acme-doc",
        "resource": "file",
        "tenant": "acme",
        "attributes": {"locked": True},
    }
    assert not ask(engine, "carol", "edit", "file:acme-doc").allowed
    assert ask(engine, "carol", "read", "file:acme-doc").allowed
    await engine.api.resource_instances.update("file:acme-doc", {"attributes": {}})
    # The attributes are replaced, not merged: without "locked" the condition fails.
    assert not ask(engine, "carol", "edit", "file:acme-doc").allowed


async def test_instance_delete_takes_its_tuples_and_role_assignments(tmp_path: Path) -> None:
    """Deleting folder:sub removes its tuples and the roles assigned on it, for good."""
    engine = engine_of()
    assert ask(engine, "ann", "edit", "file:x").allowed
    assert ask(engine, "bob", "edit", "folder:sub").allowed
    await engine.api.resource_instances.delete("folder:sub")
    assert not ask(engine, "ann", "edit", "file:x").allowed
    assert not ask(engine, "ann", "edit", "folder:sub").allowed
    assert not ask(engine, "bob", "edit", "file:x").allowed
    facts = engine.facts
    assert ("folder", "sub") not in facts.instances
    assert [t for t in facts.links() if ("folder", "sub") in (t[0], t[2])] == []
    assert ("bob", "folder", "sub") not in facts.instance_roles
    # Created again, it is a new instance: neither the tuples nor bob's role come back.
    await engine.api.resource_instances.create(
        {"key": "sub", "resource": "folder", "tenant": "default"}
    )
    assert not ask(engine, "bob", "edit", "folder:sub").allowed
    assert not ask(engine, "ann", "edit", "file:x").allowed
    engine.save(tmp_path / "facts.yaml")
    saved = (tmp_path / "facts.yaml").read_text(encoding="utf-8")
    assert "folder:sub" in saved  # the instance itself
    assert "object: folder:sub" not in saved
    assert "subject: folder:sub" not in saved
    # The other facts stay.
    assert ask(engine, "ann", "edit", "folder:top").allowed
    assert ask(engine, "dave", "read", "folder:top").allowed


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
async def test_saved_facts_load_back_to_the_same_decisions(tmp_path: Path, suffix: str) -> None:
    """After runtime changes, save + from_file(data=...) decides every request alike."""
    engine = engine_of()
    await engine.api.resource_instances.create({"key": "y", "resource": "file", "tenant": "acme"})
    await engine.api.relationship_tuples.create(link("folder:top", "parent", "file:y"))
    await engine.api.role_assignments.assign(assignment("erin", "editor", "folder:new"))
    await engine.api.relationship_tuples.create(link("folder:new", "parent", "folder:sub"))
    await engine.api.role_assignments.unassign(assignment("dave", "viewer", "folder:top"))
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(base()), encoding="utf-8")
    engine.save(tmp_path / f"facts{suffix}")
    reloaded = LocalPolicyEngine.from_file(policy_file, data=tmp_path / f"facts{suffix}")
    assert table(reloaded) == table(engine)
    assert ask(reloaded, "erin", "edit", "file:x").allowed


async def test_a_tuple_closing_a_cycle_or_a_too_long_chain_is_refused() -> None:
    """The directory refuses a cycle and a chain beyond MAX_CHAIN, and decides as before."""
    engine = engine_of()
    with pytest.raises(DirectoryError) as caught:
        await engine.api.relationship_tuples.create(link("folder:sub", "parent", "folder:top"))
    assert caught.value.problem == (
        "it would close a cycle: folder:sub is already related, directly or through others, "
        "to folder:top"
    )
    with pytest.raises(DirectoryError, match="it would close a cycle"):
        await engine.api.relationship_tuples.create(link("folder:top", "parent", "folder:top"))
    long = engine_of(chain(MAX_CHAIN))
    before = table(long)
    with pytest.raises(DirectoryError) as caught:
        await long.api.relationship_tuples.create(
            link(f"folder:f{MAX_CHAIN}", "parent", "folder:g")
        )
    assert caught.value.problem == (
        f"it would make a chain of {MAX_CHAIN + 1} tuples (at most {MAX_CHAIN})"
    )
    with pytest.raises(DirectoryError, match="chain of"):
        await long.api.relationship_tuples.create(link("folder:g", "parent", "folder:f0"))
    assert table(long) == before


# -- refusals ----------------------------------------------------------------------------------

Change = Callable[[Directory], Awaitable[object]]


class Unserialisable:
    """Not a JSON value."""


REFUSALS: list[tuple[str, Change, str, str]] = [
    # (label, call, operation, problem or the start of it)
    (
        "unknown role",
        lambda api: api.role_assignments.assign(assignment("ann", "owner")),
        "role_assignments.assign",
        "unknown role 'owner' (known: reader, writer)",
    ),
    (
        "unknown resource role",
        lambda api: api.role_assignments.assign(assignment("ann", "owner", "folder:top")),
        "role_assignments.assign",
        "unknown resource role 'owner' on resource type 'folder' (known: editor, viewer)",
    ),
    (
        "unknown resource type in an assignment",
        lambda api: api.users.assign_role(assignment("ann", "editor", "project:p")),
        "users.assign_role",
        "resource instance 'project:p': unknown resource type 'project' "
        "(known: workspace, folder, file)",
    ),
    (
        "unknown resource type of an instance",
        lambda api: api.resource_instances.create(
            {"key": "p", "resource": "project", "tenant": "default"}
        ),
        "resource_instances.create",
        "unknown resource type 'project' (known: workspace, folder, file)",
    ),
    (
        "unknown resource type in a tuple",
        lambda api: api.relationship_tuples.create(link("project:p", "parent", "file:x")),
        "relationship_tuples.create",
        "resource instance 'project:p': unknown resource type 'project' "
        "(known: workspace, folder, file)",
    ),
    (
        "unknown relation",
        lambda api: api.relationship_tuples.create(link("folder:top", "child", "file:x")),
        "relationship_tuples.create",
        "unknown relation 'child' on resource type 'file' (known: parent, shared_from)",
    ),
    (
        "subject of the wrong type",
        lambda api: api.relationship_tuples.create(link("workspace:w", "parent", "file:x")),
        "relationship_tuples.create",
        "relation 'parent' of 'file' links a 'folder', not a 'workspace'",
    ),
    (
        "malformed instance key",
        lambda api: api.resource_instances.delete("folder"),
        "resource_instances.delete",
        "resource instance 'folder': expected '<resource type>:<instance key>', e.g. 'invoice:42'",
    ),
    (
        "duplicate assign",
        lambda api: api.role_assignments.assign(assignment("ann", "admin", "workspace:w")),
        "role_assignments.assign",
        "user 'ann' already has role 'admin' on 'workspace:w'",
    ),
    (
        "duplicate assign of a tenant role",
        lambda api: api.users.assign_role(assignment("carol", "reader", tenant="acme")),
        "users.assign_role",
        "user 'carol' already has role 'reader' in tenant 'acme'",
    ),
    (
        "unassign of a role only derived",
        lambda api: api.role_assignments.unassign(assignment("ann", "editor", "folder:top")),
        "role_assignments.unassign",
        "user 'ann' has no role 'editor' on 'folder:top'",
    ),
    (
        "unassign of a role not held",
        lambda api: api.users.unassign_role(assignment("carol", "reader")),
        "users.unassign_role",
        "user 'carol' has no role 'reader' in tenant 'default'",
    ),
    (
        "duplicate tuple",
        lambda api: api.relationship_tuples.create(link("folder:sub", "parent", "file:x")),
        "relationship_tuples.create",
        "the tuple exists",
    ),
    (
        "deleting a tuple that does not exist",
        lambda api: api.relationship_tuples.delete(link("folder:top", "parent", "file:x")),
        "relationship_tuples.delete",
        "no such tuple",
    ),
    (
        "a tuple closing a cycle",
        lambda api: api.relationship_tuples.create(link("folder:sub", "parent", "folder:top")),
        "relationship_tuples.create",
        "it would close a cycle",
    ),
    (
        "an assignment on an instance of another tenant",
        lambda api: api.role_assignments.assign(
            assignment("erin", "editor", "file:acme-doc", tenant="globex")
        ),
        "role_assignments.assign",
        "resource instance 'file:acme-doc' is in tenant 'acme', not 'globex'",
    ),
    (
        "a tuple naming another tenant than its instance",
        lambda api: api.relationship_tuples.create(
            link("folder:top", "parent", "file:acme-doc") | {"tenant": "globex"}
        ),
        "relationship_tuples.create",
        "a tuple lives in one tenant: the tuple names 'globex', file:acme-doc is in 'acme'",
    ),
    (
        "an instance that exists",
        lambda api: api.resource_instances.create(
            {"key": "sub", "resource": "folder", "tenant": "default"}
        ),
        "resource_instances.create",
        "resource instance 'folder:sub' exists",
    ),
    (
        "updating an instance that does not exist",
        lambda api: api.resource_instances.update("folder:top", {"attributes": {}}),
        "resource_instances.update",
        "no resource instance 'folder:top'",
    ),
    (
        "deleting an instance that does not exist",
        lambda api: api.resource_instances.delete("file:x"),
        "resource_instances.delete",
        "no resource instance 'file:x'",
    ),
    (
        "a set as an attribute",
        lambda api: api.resource_instances.create(
            {"key": "y", "resource": "file", "tenant": "default", "attributes": {"tags": {"a"}}}
        ),
        "resource_instances.create",
        "attributes: ",
    ),
    (
        "NaN as an attribute",
        lambda api: api.resource_instances.update(
            "folder:sub", {"attributes": {"size": float("nan")}}
        ),
        "resource_instances.update",
        "attributes: ",
    ),
    (
        "an object as an attribute",
        lambda api: api.users.sync({"key": "erin", "attributes": {"x": Unserialisable()}}),
        "users.sync",
        "attributes: ",
    ),
    (
        "a key that is not a string",
        lambda api: api.resource_instances.create(
            {"key": "y", "resource": "file", "tenant": "default", "attributes": {1: "one"}}
        ),
        "resource_instances.create",
        "attributes",
    ),
    (
        "a built-in attribute name",
        lambda api: api.resource_instances.update(
            "folder:sub", {"attributes": {"mcp_method": "tools/list"}}
        ),
        "resource_instances.update",
        "attributes: ",
    ),
    (
        "an unknown field in an assignment",
        lambda api: api.role_assignments.assign(assignment("erin", "reader") | {"colour": "red"}),
        "role_assignments.assign",
        "colour: Extra inputs are not permitted",
    ),
    (
        "an unknown field in a tuple",
        lambda api: api.relationship_tuples.create(
            link("folder:sub", "parent", "file:y") | {"weight": 1}
        ),
        "relationship_tuples.create",
        "weight: Extra inputs are not permitted",
    ),
    (
        "an unknown field in an instance",
        lambda api: api.resource_instances.create(
            {"key": "y", "resource": "file", "tenant": "default", "owner": "erin"}
        ),
        "resource_instances.create",
        "owner: Extra inputs are not permitted",
    ),
    (
        "a missing field",
        lambda api: api.role_assignments.assign({"user": "erin", "tenant": "default"}),
        "role_assignments.assign",
        "role: Field required",
    ),
    (
        "a list as a payload",
        lambda api: api.role_assignments.assign(["erin", "reader"]),
        "role_assignments.assign",
        "expected a mapping or a permit SDK model, not list",
    ),
    (
        "a string as a payload",
        lambda api: api.relationship_tuples.create("folder:sub parent file:y"),
        "relationship_tuples.create",
        "expected a mapping or a permit SDK model, not str",
    ),
    (
        "None as a payload",
        lambda api: api.resource_instances.create(None),
        "resource_instances.create",
        "expected a mapping or a permit SDK model, not NoneType",
    ),
    (
        "a number as an update",
        lambda api: api.resource_instances.update("folder:sub", 42),
        "resource_instances.update",
        "expected a mapping or a permit SDK model, not int",
    ),
]

REFUSAL_PARAMS = [
    pytest.param(call, operation, problem, id=label) for label, call, operation, problem in REFUSALS
]


@pytest.mark.parametrize(("call", "operation", "problem"), REFUSAL_PARAMS)
async def test_refusals_raise_and_change_nothing(
    call: Change, operation: str, problem: str
) -> None:
    """Each refusal is a DirectoryError naming the call and the problem; no decision changes."""
    engine = engine_of()
    facts = engine.facts
    before = table(engine)
    with pytest.raises(DirectoryError) as caught:
        await call(engine.api)
    assert caught.value.operation == operation
    assert caught.value.problem.startswith(problem), caught.value.problem
    assert str(caught.value).startswith(f"{operation}: ")
    assert engine.facts == facts
    assert table(engine) == before


# -- the real permit SDK -----------------------------------------------------------------------


async def test_the_directory_takes_the_permit_sdk_models() -> None:
    """RoleAssignmentCreate, ResourceInstanceCreate, RelationshipTupleCreate... all work."""
    engine = engine_of()
    api = engine.api
    await api.resource_instances.create(
        ResourceInstanceCreate(
            key="y", resource="file", tenant="default", attributes={"locked": False}
        )
    )
    await api.relationship_tuples.create(
        RelationshipTupleCreate(subject="folder:sub", relation="parent", object="file:y")
    )
    assert ask(engine, "ann", "edit", "file:y").allowed
    await api.role_assignments.assign(
        RoleAssignmentCreate(
            role="editor", tenant="default", user="erin", resource_instance="folder:top"
        )
    )
    assert ask(engine, "erin", "edit", "file:y").allowed
    await api.users.assign_role(RoleAssignmentCreate(role="writer", tenant="default", user="dave"))
    assert ask(engine, "dave", "edit", "file:y").allowed
    await api.resource_instances.update(
        "file:y", ResourceInstanceUpdate(attributes={"locked": True})
    )
    assert not ask(engine, "dave", "edit", "file:y").allowed
    await api.relationship_tuples.delete(
        RelationshipTupleDelete(subject="folder:sub", relation="parent", object="file:y")
    )
    assert not ask(engine, "ann", "edit", "file:y").allowed
    await api.role_assignments.unassign(
        RoleAssignmentRemove(
            role="editor", tenant="default", user="erin", resource_instance="folder:top"
        )
    )
    assert not ask(engine, "erin", "edit", "folder:sub").allowed
    removed = RoleAssignmentRemove(role="writer", tenant="default", user="dave")
    await api.users.unassign_role(removed)
    synced = await api.users.sync(
        UserCreate(key="erin", email="erin@example.com", attributes={"team": "docs"})
    )
    assert synced == {"key": "erin", "attributes": {"team": "docs"}}
    assert engine.facts.user_attributes["erin"] == {"team": "docs"}


def the_directory_methods() -> list[tuple[str, str]]:
    """Every public method of every part of ``engine.api``."""
    api = engine_of().api
    return [
        (part, method)
        for part in ("role_assignments", "users", "resource_instances", "relationship_tuples")
        for method in dir(getattr(api, part))
        if not method.startswith("_") and callable(getattr(getattr(api, part), method))
    ]


def test_the_directory_has_the_documented_parts_and_methods() -> None:
    """engine.api's parts and methods: the ones docs/policy-file.md lists, no more."""
    assert sorted(the_directory_methods()) == [
        ("relationship_tuples", "create"),
        ("relationship_tuples", "delete"),
        ("resource_instances", "create"),
        ("resource_instances", "delete"),
        ("resource_instances", "update"),
        ("role_assignments", "assign"),
        ("role_assignments", "unassign"),
        ("users", "assign_role"),
        ("users", "sync"),
        ("users", "unassign_role"),
    ]


@pytest.mark.parametrize(("part", "method"), the_directory_methods())
def test_every_directory_method_exists_on_the_real_sdk(part: str, method: str) -> None:
    """Same part, same name, async on both, the same parameter names (no request is made)."""
    sdk = Permit(token="permit_key_" + "x" * 10, pdp="http://127.0.0.1:1")
    theirs = getattr(getattr(sdk.api, part), method)
    ours = getattr(getattr(engine_of().api, part), method)
    assert inspect.iscoroutinefunction(inspect.unwrap(theirs))
    assert inspect.iscoroutinefunction(ours)
    assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)


# -- concurrency -------------------------------------------------------------------------------


def derived_for(user: str, file_key: str, start: str = "folder:top") -> Decision:
    """The decision once ``user`` is editor of ``start`` (for ann: as the policy says)."""
    path = "'editor' on folder:top -parent-> 'editor' on folder:sub -parent-> "
    if user == "ann":
        path = "'admin' on workspace:w -workspace-> " + path
    return Decision(
        allowed=True,
        reason=(
            f"resource role 'editor' on file:{file_key} grants edit "
            f"(derived: {path}'editor' on file:{file_key})"
        ),
    )


async def test_concurrent_changes_and_decisions_in_one_event_loop() -> None:
    """Many tasks change and decide at once: each decision is before or after, all changes land."""
    engine = engine_of()
    count = 60
    users = [f"user{n}" for n in range(count)]
    before_user = {u: ask(engine, u, "edit", "file:x") for u in users}
    before_file = {n: ask(engine, "ann", "edit", f"file:f{n}") for n in range(count)}

    async def change(n: int) -> None:
        await asyncio.sleep(0)
        await engine.api.role_assignments.assign(assignment(users[n], "editor", "folder:top"))
        await asyncio.sleep(0)
        await engine.api.relationship_tuples.create(link("folder:sub", "parent", f"file:f{n}"))

    async def watch(n: int) -> list[tuple[Decision, Decision]]:
        seen = []
        for _ in range(10):
            await asyncio.sleep(0)
            user = await engine.check(request(users[n], "edit", "file", "x"))
            file = await engine.check(request("ann", "edit", "file", f"f{n}"))
            seen.append((user, file))
        return seen

    results = await asyncio.gather(
        *(change(n) for n in range(count)), *(watch(n) for n in range(count))
    )
    for n, seen in enumerate(results[count:]):
        for user, file in seen:
            assert user in (before_user[users[n]], derived_for(users[n], "x"))
            assert file in (before_file[n], derived_for("ann", f"f{n}"))
    for n in range(count):
        assert ask(engine, users[n], "edit", "file:x") == derived_for(users[n], "x")
        assert ask(engine, "ann", "edit", f"file:f{n}") == derived_for("ann", f"f{n}")
    assert len(engine.facts.children[("folder", "sub")]) == count + 2


def test_threads_decide_while_other_threads_change() -> None:
    """Readers in threads never fail and see before or after; every writer's change lands."""
    engine = engine_of()
    tuple_ = link("folder:sub", "parent", "file:y")
    before_y = ask(engine, "ann", "edit", "file:y")
    after_y = derived_for("ann", "y")
    steady = ask(engine, "ann", "edit", "file:x")
    writers, per_writer, toggles = 3, 30, 100
    stop = threading.Event()

    def toggle() -> None:
        async def run() -> None:
            for _ in range(toggles):
                await engine.api.relationship_tuples.create(tuple_)
                await engine.api.relationship_tuples.delete(tuple_)

        asyncio.run(run())

    def assign(w: int) -> None:
        async def run() -> None:
            for n in range(per_writer):
                await engine.api.role_assignments.assign(
                    assignment(f"w{w}-{n}", "editor", "folder:sub")
                )

        asyncio.run(run())

    def read() -> list[tuple[Decision, Decision]]:
        seen = []
        while not stop.is_set() or not seen:
            seen.append(
                (ask(engine, "ann", "edit", "file:y"), ask(engine, "ann", "edit", "file:x"))
            )
        return seen

    with ThreadPoolExecutor(max_workers=8) as pool:
        readers = [pool.submit(read) for _ in range(4)]
        changes = [pool.submit(toggle), *(pool.submit(assign, w) for w in range(writers))]
        for future in changes:
            future.result()
        stop.set()
        observed = [pair for future in readers for pair in future.result()]
    assert observed
    for y, x in observed:
        assert y in (before_y, after_y)
        assert x == steady
    assert ask(engine, "ann", "edit", "file:y") == before_y
    for w in range(writers):
        for n in range(per_writer):
            assert ask(engine, f"w{w}-{n}", "edit", "file:x").allowed


# -- audit -------------------------------------------------------------------------------------

CHANGES: list[tuple[str, Change, str, dict[str, Any]]] = [
    (
        "assign",
        lambda api: api.role_assignments.assign(assignment("erin", "editor", "folder:top")),
        "role_assignments.assign",
        assignment("erin", "editor", "folder:top"),
    ),
    (
        "unassign",
        lambda api: api.role_assignments.unassign(assignment("bob", "editor", "folder:sub")),
        "role_assignments.unassign",
        assignment("bob", "editor", "folder:sub"),
    ),
    (
        "assign_role",
        lambda api: api.users.assign_role(assignment("erin", "reader", tenant="acme")),
        "users.assign_role",
        assignment("erin", "reader", tenant="acme"),
    ),
    (
        "unassign_role",
        lambda api: api.users.unassign_role(assignment("carol", "reader", tenant="acme")),
        "users.unassign_role",
        assignment("carol", "reader", tenant="acme"),
    ),
    (
        "sync",
        lambda api: api.users.sync({"key": "erin", "attributes": {"team": "docs"}}),
        "users.sync",
        {"key": "erin", "attributes": {"team": "docs"}},
    ),
    (
        "instance create",
        lambda api: api.resource_instances.create(
            {"key": "y", "resource": "file", "tenant": "acme", "attributes": {"locked": True}}
        ),
        "resource_instances.create",
        {"key": "y", "resource": "file", "tenant": "acme", "attributes": {"locked": True}},
    ),
    (
        "instance update",
        lambda api: api.resource_instances.update(
            "file:acme-doc", {"attributes": {"locked": True}}
        ),
        "resource_instances.update",
        {"instance": "file:acme-doc", "attributes": {"locked": True}},
    ),
    (
        "instance delete",
        lambda api: api.resource_instances.delete("folder:sub"),
        "resource_instances.delete",
        {"instance": "folder:sub"},
    ),
    (
        "tuple create",
        lambda api: api.relationship_tuples.create(link("folder:sub", "parent", "file:y")),
        "relationship_tuples.create",
        link("folder:sub", "parent", "file:y"),
    ),
    (
        "tuple delete",
        lambda api: api.relationship_tuples.delete(link("folder:sub", "parent", "file:x")),
        "relationship_tuples.delete",
        link("folder:sub", "parent", "file:x"),
    ),
]


def audited(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "permit_guard.audit"]


@pytest.mark.parametrize(
    ("call", "operation", "change"),
    [pytest.param(call, op, change, id=label) for label, call, op, change in CHANGES],
)
async def test_each_change_is_one_info_audit_line(
    call: Change, operation: str, change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A change logs exactly one INFO JSON line: event, operation and the change."""
    engine = engine_of()
    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        await call(engine.api)
    (record,) = audited(caplog)
    assert record.levelno == logging.INFO
    assert json.loads(record.getMessage()) == {
        "event": "directory",
        "operation": operation,
        "change": change,
    }


@pytest.mark.parametrize(("call", "operation", "problem"), REFUSAL_PARAMS)
async def test_each_refusal_is_one_warning_audit_line(
    call: Change, operation: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal logs exactly one WARNING JSON line with what was refused, and no INFO line."""
    engine = engine_of()
    with (
        caplog.at_level(logging.INFO, logger="permit_guard.audit"),
        pytest.raises(DirectoryError) as caught,
    ):
        await call(engine.api)
    records = audited(caplog)
    assert [r.levelno for r in records] == [logging.WARNING]
    line = json.loads(records[0].getMessage())
    assert line["event"] == "directory"
    assert line["operation"] == operation
    assert line["refused"] == caught.value.problem
