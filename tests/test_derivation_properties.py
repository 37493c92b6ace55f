"""Role derivation against a reference: it grants exactly what the rules reach.

Hypothesis draws small models (resource types, relations between them, resource
roles with random derivation rules) and small worlds (instances, acyclic tuples,
direct assignments). A reference implementation in this file -- a fixpoint over
the rules and the tuples, with no depth bound, since every drawn chain is short --
says who holds which role where, and the embedded engine must agree: no allow the
reference does not derive, no derived holding denied, every reason's path a real
chain of tuples and rules, the listing rule on "some instance of the type", runtime
changes equal to a fresh load (and to ``save`` + ``from_file(data=...)``), and
cycles refused at load and at run time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permit_guard import (
    AuthzRequest,
    Decision,
    DirectoryError,
    LocalPolicyEngine,
    PolicyFileError,
    Principal,
    Resource,
)
from permit_guard.engines.local.relations import MAX_CHAIN

TYPES = ("t0", "t1", "t2")
ACTIONS = ("read", "edit", "drop")
ROLES = ("r0", "r1", "r2")
RELATIONS = ("up", "in", "of")
USERS = ("u0", "u1", "u2")
TENANTS = ("default", "acme")
#: A key no drawn instance has: nothing is ever held on it.
ELSEWHERE = "elsewhere"

#: Derandomized: the same 200 examples on every run, so a run fails only for a change
#: of the code; raise max_examples locally to explore further.
PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Instance = tuple[str, str]
#: ``(user, type, key, role)``.
Holding = tuple[str, str, str, str]
#: ``(subject, relation, object)``.
Link = tuple[Instance, str, Instance]
#: ``(role on the subject, subject type, relation)``: one ``users_with_role`` entry.
Rule = tuple[str, str, str]


@dataclass(frozen=True)
class Model:
    """A drawn policy model; ``instances`` is the order tuples follow (lower to higher)."""

    types: tuple[str, ...]
    relations: Mapping[str, Mapping[str, str]]
    roles: Mapping[str, Mapping[str, frozenset[str]]]
    rules: Mapping[tuple[str, str], frozenset[Rule]]
    instances: tuple[Instance, ...]
    short_form: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class World:
    """Drawn facts: direct assignments, tuples, and the instances known (with tenants)."""

    assigned: frozenset[Holding]
    links: frozenset[Link]
    known: Mapping[Instance, str] = field(default_factory=dict)


# -- strategies --------------------------------------------------------------------------------


@st.composite
def models(draw: st.DrawFn, *, all_relations: bool = False) -> Model:
    """A model of up to three types; ``all_relations``: every type relates to every type."""
    types = TYPES[: draw(st.integers(1, len(TYPES)))]
    if all_relations:
        relations = {t: {f"from_{s}": s for s in types} for t in types}
    else:
        relations = {
            t: draw(
                st.dictionaries(
                    st.sampled_from(RELATIONS), st.sampled_from(types), min_size=1, max_size=3
                )
            )
            for t in types
        }
    roles = {
        t: {
            r: frozenset(draw(st.sets(st.sampled_from(ACTIONS))))
            for r in ROLES[: draw(st.integers(1, len(ROLES)))]
        }
        for t in types
    }
    rules: dict[tuple[str, str], frozenset[Rule]] = {}
    for t in types:
        options = [(r2, s, rel) for rel, s in sorted(relations[t].items()) for r2 in roles[s]]
        if not options:
            continue
        for r in roles[t]:
            # Mostly at least one rule: derivation is what is under test.
            least = draw(st.sampled_from((0, 1, 1, 1)))
            chosen = draw(st.sets(st.sampled_from(options), min_size=least, max_size=3))
            if chosen:
                rules[t, r] = frozenset(chosen)
    plain = [(t, r) for t in types for r in roles[t] if (t, r) not in rules]
    short = frozenset(draw(st.sets(st.sampled_from(plain)))) if plain else frozenset()
    instances: list[Instance] = []
    for n in range(draw(st.integers(1, 7))):
        # Mostly a type that may be linked below the previous instance, so chains form.
        previous = instances[-1][0] if instances else None
        below = [t for t in types if previous in relations[t].values()]
        pool = below if below and draw(st.integers(0, 3)) else list(types)
        instances.append((draw(st.sampled_from(pool)), f"i{n}"))
    return Model(types, relations, roles, rules, tuple(instances), short)


def link_options(model: Model, *, ordered: bool = True) -> list[Link]:
    """Every tuple the model allows; ``ordered``: only from lower to higher instances."""
    found: list[Link] = []
    for i, subject in enumerate(model.instances):
        for j, obj in enumerate(model.instances):
            if ordered and j <= i:
                continue
            for relation, subject_type in sorted(model.relations[obj[0]].items()):
                if subject_type == subject[0]:
                    found.append((subject, relation, obj))
    return found


def assignment_options(model: Model) -> list[Holding]:
    """Every direct assignment the model allows."""
    return [(u, t, k, r) for u in USERS for t, k in model.instances for r in model.roles[t]]


@st.composite
def worlds(draw: st.DrawFn, model: Model) -> World:
    """Random direct assignments, acyclic tuples and known instances for ``model``."""
    links = link_options(model)
    order = {instance: n for n, instance in enumerate(model.instances)}
    # Links between neighbours, and assignments near the top, make long chains likely.
    next_links = [link for link in links if order[link[2]] == order[link[0]] + 1]
    options = assignment_options(model)
    top = [h for h in options if order[h[1], h[2]] < 2]
    drawn_links = frozenset(
        draw(st.sets(st.sampled_from(links), max_size=8)) if links else set()
    ) | frozenset(draw(st.sets(st.sampled_from(next_links))) if next_links else set())
    # A tuple lives in one tenant: instances linked, directly or not, share theirs.
    tenant_of = {
        group: draw(st.sampled_from(TENANTS)) for group in set(components(drawn_links).values())
    }
    groups = components(drawn_links)
    known = draw(st.sets(st.sampled_from(model.instances), max_size=4))
    return World(
        assigned=frozenset(
            draw(st.sets(st.sampled_from(options), max_size=6))
            | draw(st.sets(st.sampled_from(top), max_size=4))
        ),
        links=drawn_links,
        known={
            i: tenant_of[groups[i]] if i in groups else draw(st.sampled_from(TENANTS))
            for i in known
        },
    )


def components(links: Iterable[Link]) -> dict[Instance, Instance]:
    """Each linked instance -> a representative of the instances linked with it."""
    parent: dict[Instance, Instance] = {}

    def find(x: Instance) -> Instance:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for subject, _, obj in links:
        parent[find(subject)] = find(obj)
    return {x: find(x) for x in list(parent)}


def crosses_tenants(
    links: Iterable[Link], known: Mapping[Instance, str], extra: Link | None = None
) -> bool:
    """Whether some tuple (``extra`` included) links known instances of two tenants."""
    for subject, _, obj in [*links, *([extra] if extra else [])]:
        if subject in known and obj in known and known[subject] != known[obj]:
            return True
    return False


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Model, World, str]:
    """A model, a world for it, and the tenant requests name."""
    model = draw(models())
    return model, draw(worlds(model)), draw(st.sampled_from(TENANTS))


# -- the policy, and the reference -------------------------------------------------------------


def name(instance: Instance) -> str:
    return f"{instance[0]}:{instance[1]}"


def policy(model: Model, world: World) -> dict[str, Any]:
    """The policy file stating ``model`` and ``world``."""
    resources: dict[str, Any] = {}
    for t in model.types:
        roles: dict[str, Any] = {}
        for r, actions in model.roles[t].items():
            permissions = sorted(actions)
            if (t, r) in model.short_form:
                roles[r] = permissions
                continue
            derivations = [
                {"role": r2, "on_resource": s, "linked_by_relation": rel}
                for r2, s, rel in sorted(model.rules.get((t, r), ()))
            ]
            roles[r] = {"permissions": permissions, "granted_to": {"users_with_role": derivations}}
        resources[t] = {
            "actions": list(ACTIONS),
            "relations": dict(model.relations[t]),
            "roles": roles,
        }
    users: dict[str, Any] = {}
    for u, t, k, r in sorted(world.assigned):
        entry = users.setdefault(u, {"resource_roles": {}})
        entry["resource_roles"].setdefault(f"{t}:{k}", []).append(r)
    return {
        "resources": resources,
        "users": users,
        "resource_instances": {name(i): {"tenant": tenant} for i, tenant in world.known.items()},
        "relationships": [
            {"subject": name(s), "relation": rel, "object": name(o)}
            for s, rel, o in sorted(world.links)
        ],
    }


def reference(model: Model, world: World) -> frozenset[Holding]:
    """Every ``(user, type, key, role)`` held: the assignments, closed under the rules."""
    held = set(world.assigned)
    grew = True
    while grew:
        grew = False
        for subject, relation, obj in world.links:
            for role in model.roles[obj[0]]:
                for subject_role, subject_type, rule_relation in model.rules.get(
                    (obj[0], role), ()
                ):
                    if rule_relation != relation or subject_type != subject[0]:
                        continue
                    for user in USERS:
                        if (user, *subject, subject_role) in held and (
                            user,
                            *obj,
                            role,
                        ) not in held:
                            held.add((user, *obj, role))
                            grew = True
    return frozenset(held)


def keyed(user: str, instance: Instance, action: str, tenant: str) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type=instance[0], key=instance[1], tenant=tenant),
    )


def listing(user: str, type_name: str, action: str, tenant: str) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type=type_name, tenant=tenant, attributes={"mcp_method": "tools/list"}),
    )


def targets(model: Model) -> list[Instance]:
    """The instances asked about: the drawn ones, and one per type nothing is held on."""
    return [*dict.fromkeys(model.instances), *((t, ELSEWHERE) for t in model.types)]


def keyed_table(
    engine: LocalPolicyEngine, model: Model, tenant: str
) -> dict[tuple[str, Instance, str], Decision]:
    return {
        (user, instance, action): engine.decide(keyed(user, instance, action, tenant))
        for user in USERS
        for instance in targets(model)
        for action in ACTIONS
    }


def listing_table(
    engine: LocalPolicyEngine, model: Model, tenant: str
) -> dict[tuple[str, str, str], Decision]:
    return {
        (user, type_name, action): engine.decide(listing(user, type_name, action, tenant))
        for user in USERS
        for type_name in model.types
        for action in ACTIONS
    }


def grants(model: Model, type_name: str, role: str, action: str) -> bool:
    return action in model.roles[type_name][role]


def expected_keyed(model: Model, held: frozenset[Holding]) -> dict[tuple[str, Instance, str], bool]:
    return {
        (user, instance, action): any(
            (user, *instance, role) in held and grants(model, instance[0], role, action)
            for role in model.roles[instance[0]]
        )
        for user in USERS
        for instance in targets(model)
        for action in ACTIONS
    }


def expected_listing(model: Model, held: frozenset[Holding]) -> dict[tuple[str, str, str], bool]:
    return {
        (user, type_name, action): any(
            u == user and t == type_name and grants(model, t, r, action) for u, t, _, r in held
        )
        for user in USERS
        for type_name in model.types
        for action in ACTIONS
    }


def allowed(table: Mapping[Any, Decision]) -> dict[Any, bool]:
    return {key: decision.allowed for key, decision in table.items()}


# -- reasons -----------------------------------------------------------------------------------

HEAD = re.compile(
    r"resource role '(?P<role>\w+)' on (?P<type>\w+):(?P<key>\w+) grants (?P<action>\w+)"
    r"(?: \((?P<note>.*)\))?"
)
FIRST = re.compile(r"'(\w+)' on (\w+):(\w+)")
STEP = re.compile(r" -(\w+)-> '(\w+)' on (\w+):(\w+)")


def chain_problem(
    reason: str,
    model: Model,
    world: World,
    user: str,
    type_name: str,
    key: str | None,
    action: str,
) -> str | None:
    """What is wrong with the chain an allowed resource-role reason names, or ``None``."""
    head = HEAD.fullmatch(reason)
    if head is None:
        return "not a resource-role reason"
    role, held_type, held_key = head["role"], head["type"], head["key"]
    if head["action"] != action or held_type != type_name:
        return "names another action or type"
    if key is not None and held_key != key:
        return "names another instance"
    if not grants(model, held_type, role, action):
        return f"role {role!r} of {held_type!r} does not grant {action!r}"
    note = head["note"] or ""
    listing_note = "listing: held on some instance"
    if key is None:
        if not note.startswith(listing_note):
            return "a listing reason without the listing note"
        note = note.removeprefix(listing_note).removeprefix("; ")
    if not note:
        if (user, held_type, held_key, role) not in world.assigned:
            return "names an assignment that does not exist"
        return None
    if not note.startswith("derived: "):
        return f"unexpected note {note!r}"
    path = note.removeprefix("derived: ")
    first = FIRST.match(path)
    if first is None:
        return "no first step"
    steps = STEP.findall(path[first.end() :])
    if "".join(f" -{r}-> '{o}' on {t}:{k}" for r, o, t, k in steps) != path[first.end() :]:
        return "steps that do not parse"
    previous_role, previous_type, previous_key = first.groups()
    if (user, previous_type, previous_key, previous_role) not in world.assigned:
        return f"starts from {previous_role!r} on {previous_type}:{previous_key}, not assigned"
    if not steps:
        return "a derived path without a step"
    if len(steps) > MAX_CHAIN:
        return "a path longer than MAX_CHAIN"
    for relation, step_role, step_type, step_key in steps:
        link = ((previous_type, previous_key), relation, (step_type, step_key))
        if link not in world.links:
            return f"no tuple {link}"
        if (previous_role, previous_type, relation) not in model.rules.get(
            (step_type, step_role), ()
        ):
            return f"no rule deriving {step_role!r} on {step_type!r} from {previous_role!r}"
        previous_role, previous_type, previous_key = step_role, step_type, step_key
    if (previous_role, previous_type, previous_key) != (role, held_type, held_key):
        return "the path does not end at the role the reason names"
    return None


# -- (a) (b) (c) (d): decisions against the reference ------------------------------------------


@PROPERTIES
@given(scenarios())
def test_derivation_never_grants_a_role_the_rules_do_not_reach(
    scenario: tuple[Model, World, str],
) -> None:
    """Every allowed keyed decision is backed by a holding the reference derives."""
    model, world, tenant = scenario
    held = reference(model, world)
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    for (user, instance, action), decision in keyed_table(engine, model, tenant).items():
        if decision.allowed:
            assert any(
                (user, *instance, role) in held and grants(model, instance[0], role, action)
                for role in model.roles[instance[0]]
            ), (user, instance, action, decision.reason)


@PROPERTIES
@given(scenarios())
def test_every_holding_the_reference_derives_is_allowed(
    scenario: tuple[Model, World, str],
) -> None:
    """Completeness: a role held (assigned or derived) allows each action it grants."""
    model, world, tenant = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    for user, type_name, key, role in reference(model, world):
        for action in sorted(model.roles[type_name][role]):
            decision = engine.decide(keyed(user, (type_name, key), action, tenant))
            assert decision.allowed, (user, type_name, key, role, action, decision.reason)


@PROPERTIES
@given(scenarios())
def test_reasons_name_a_real_chain_of_tuples_and_rules(
    scenario: tuple[Model, World, str],
) -> None:
    """Each allowed reason's path starts at an assignment; each step has its tuple and rule."""
    model, world, tenant = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    for (user, instance, action), decision in keyed_table(engine, model, tenant).items():
        if decision.allowed:
            problem = chain_problem(decision.reason, model, world, user, *instance, action)
            assert problem is None, (problem, decision.reason)
    for (user, type_name, action), decision in listing_table(engine, model, tenant).items():
        if decision.allowed:
            problem = chain_problem(decision.reason, model, world, user, type_name, None, action)
            assert problem is None, (problem, decision.reason)


@PROPERTIES
@given(scenarios())
def test_listing_allows_exactly_a_granting_role_held_on_some_instance(
    scenario: tuple[Model, World, str],
) -> None:
    """A list check is allowed iff the reference holds a granting role on some instance."""
    model, world, tenant = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    expected = expected_listing(model, reference(model, world))
    assert allowed(listing_table(engine, model, tenant)) == expected


@PROPERTIES
@given(scenarios())
def test_keyed_decisions_equal_the_reference_whatever_the_tenant(
    scenario: tuple[Model, World, str],
) -> None:
    """The whole keyed table equals the reference, in either tenant the request names."""
    model, world, _ = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    expected = expected_keyed(model, reference(model, world))
    for tenant in TENANTS:
        assert allowed(keyed_table(engine, model, tenant)) == expected


# -- (e): runtime changes ----------------------------------------------------------------------


@dataclass
class Expected:
    """The facts the directory should hold after each change, kept by the test."""

    assigned: set[Holding]
    links: set[Link]
    known: dict[Instance, str]

    def world(self) -> World:
        return World(frozenset(self.assigned), frozenset(self.links), dict(self.known))


def pick(data: st.DataObject, likely: Iterable[Any], anything: list[Any]) -> Any:
    """Mostly one of ``likely`` (a change that should land), sometimes any of ``anything``."""
    options = sorted(likely)
    if options and data.draw(st.integers(0, 3)):
        return data.draw(st.sampled_from(options))
    return data.draw(st.sampled_from(anything))


async def apply_change(
    engine: LocalPolicyEngine, data: st.DataObject, model: Model, state: Expected
) -> None:
    """Draw one change, apply it through ``engine.api`` and to ``state``; check refusals."""
    api = engine.api
    links = link_options(model)
    kinds = ["assign", "unassign", "create", "delete", *(["link", "unlink"] if links else [])]
    kind = data.draw(st.sampled_from(kinds))
    refused: bool
    if kind in ("assign", "unassign"):
        user, t, k, role = pick(
            data,
            state.assigned if kind == "unassign" else [],
            assignment_options(model),
        )
        instance = (t, k)
        if kind == "assign":
            tenant = data.draw(st.sampled_from(TENANTS))
            wrong_tenant = instance in state.known and state.known[instance] != tenant
            refused = wrong_tenant or (user, t, k, role) in state.assigned
        else:
            tenant = state.known.get(instance, "default")
            refused = (user, t, k, role) not in state.assigned
        payload = {
            "user": user,
            "role": role,
            "tenant": tenant,
            "resource_instance": name(instance),
        }
        via_users = data.draw(st.booleans())
        if kind == "assign":
            call = api.users.assign_role if via_users else api.role_assignments.assign
        else:
            call = api.users.unassign_role if via_users else api.role_assignments.unassign
        change = call(payload)
        if not refused:
            (state.assigned.add if kind == "assign" else state.assigned.discard)((user, t, k, role))
    elif kind in ("link", "unlink"):
        subject, relation, obj = pick(data, state.links if kind == "unlink" else [], links)
        payload = {"subject": name(subject), "relation": relation, "object": name(obj)}
        exists = (subject, relation, obj) in state.links
        crossing = crosses_tenants([], state.known, (subject, relation, obj))
        refused = (exists or crossing) if kind == "link" else not exists
        if kind == "link":
            change = api.relationship_tuples.create(payload)
            if not refused:
                state.links.add((subject, relation, obj))
        else:
            change = api.relationship_tuples.delete(payload)
            if not refused:
                state.links.discard((subject, relation, obj))
    elif kind == "create":
        instance = data.draw(st.sampled_from(model.instances))
        tenant = data.draw(st.sampled_from(TENANTS))
        refused = instance in state.known or crosses_tenants(
            state.links, {**state.known, instance: tenant}
        )
        change = api.resource_instances.create(
            {"key": instance[1], "resource": instance[0], "tenant": tenant, "attributes": {}}
        )
        if not refused:
            state.known[instance] = tenant
    else:
        instance = pick(data, state.known, list(model.instances))
        refused = instance not in state.known
        change = api.resource_instances.delete(name(instance))
        if not refused:
            # The cascade: the instance's tuples and the roles assigned on it go with it.
            del state.known[instance]
            state.links = {link for link in state.links if instance not in (link[0], link[2])}
            state.assigned = {h for h in state.assigned if (h[1], h[2]) != instance}
    before = engine.facts
    if refused:
        with pytest.raises(DirectoryError):
            await change
        assert engine.facts == before, f"a refused {kind} changed the facts"
    else:
        await change


def saved_and_reloaded(
    engine: LocalPolicyEngine, model: Model, initial: World, folder: Path, suffix: str
) -> LocalPolicyEngine:
    """``engine.save`` and ``from_file(policy, data=...)`` over the initial policy file."""
    policy_file = folder / "policy.json"
    policy_file.write_text(json.dumps(policy(model, initial)), encoding="utf-8")
    data_file = folder / f"facts{suffix}"
    engine.save(data_file)
    return LocalPolicyEngine.from_file(policy_file, data=data_file)


@PROPERTIES
@given(scenarios(), st.data())
def test_runtime_changes_decide_like_a_fresh_load_and_a_saved_data_file(
    scenario: tuple[Model, World, str], data: st.DataObject
) -> None:
    """After random changes via engine.api: the reference, a fresh load, save + reload agree."""
    model, world, tenant = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    state = Expected(set(world.assigned), set(world.links), dict(world.known))
    count = data.draw(st.integers(1, 12))

    async def run() -> None:
        for _ in range(count):
            await apply_change(engine, data, model, state)
            # Each change takes effect on the next decision.
            expected = expected_keyed(model, reference(model, state.world()))
            assert allowed(keyed_table(engine, model, tenant)) == expected

    asyncio.run(run())
    now = state.world()
    fresh = LocalPolicyEngine.from_dict(policy(model, now))
    suffix = data.draw(st.sampled_from([".yaml", ".json"]))
    with tempfile.TemporaryDirectory() as folder:
        reloaded = saved_and_reloaded(engine, model, world, Path(folder), suffix)
    held = reference(model, now)
    for candidate in (engine, fresh, reloaded):
        assert allowed(keyed_table(candidate, model, tenant)) == expected_keyed(model, held)
        assert allowed(listing_table(candidate, model, tenant)) == expected_listing(model, held)
    for (user, instance, action), decision in keyed_table(engine, model, tenant).items():
        if decision.allowed:
            problem = chain_problem(decision.reason, model, now, user, *instance, action)
            assert problem is None, (problem, decision.reason)


# -- (f): cycles -------------------------------------------------------------------------------


def linked_to(instance: Instance) -> str:
    """The relation, on any type of the all-relations model, whose subject is ``instance``."""
    return f"from_{instance[0]}"


def reaches(links: Iterable[Link], start: Instance, goal: Instance) -> bool:
    """Whether a chain of tuples leads down from ``start`` to ``goal`` (or they are the same)."""
    below: dict[Instance, set[Instance]] = {}
    for subject, _, obj in links:
        below.setdefault(subject, set()).add(obj)
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(below.get(node, ()))
    return False


def has_cycle(links: Iterable[Link]) -> bool:
    links = list(links)
    return any(reaches([x for x in links if x != link], link[2], link[0]) for link in links)


def named_cycle(problem: str) -> list[Instance]:
    prefix = "relationships: the tuples form a cycle: "
    assert problem.startswith(prefix), problem
    return [
        (t, k) for t, _, k in (part.partition(":") for part in problem[len(prefix) :].split(" -> "))
    ]


def is_real_cycle(cycle: list[Instance], links: Iterable[Link]) -> bool:
    """Whether consecutive names are linked by tuples, all in one direction, and it closes."""
    pairs = {(s, o) for s, _, o in links}
    steps = list(itertools.pairwise(cycle))
    if len(cycle) < 2 or cycle[0] != cycle[-1]:
        return False
    return all((a, b) in pairs for a, b in steps) or all((b, a) in pairs for a, b in steps)


@st.composite
def any_tuples(draw: st.DrawFn) -> tuple[Model, frozenset[Link]]:
    """The all-relations model and random tuples in any direction (self-links too)."""
    model = draw(models(all_relations=True))
    links = link_options(model, ordered=False)
    return model, frozenset(draw(st.sets(st.sampled_from(links), max_size=8)))


@PROPERTIES
@given(any_tuples())
def test_a_tuple_set_loads_exactly_when_it_has_no_cycle(
    drawn: tuple[Model, frozenset[Link]],
) -> None:
    """Random tuples load iff acyclic; a cyclic set is refused naming a real cycle."""
    model, links = drawn
    document = policy(model, World(frozenset(), links))
    if not has_cycle(links):
        LocalPolicyEngine.from_dict(document)
        return
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_dict(document)
    assert len(caught.value.problems) == 1, caught.value.problems
    cycle = named_cycle(caught.value.problems[0])
    assert is_real_cycle(cycle, links), (cycle, sorted(links))


@PROPERTIES
@given(models(all_relations=True), st.data())
def test_a_planted_cycle_is_always_refused_at_load(model: Model, data: st.DataObject) -> None:
    """Acyclic tuples plus a cycle through distinct instances (one: a self-link) never load."""
    distinct = list(dict.fromkeys(model.instances))
    members = data.draw(st.permutations(distinct).map(tuple))
    members = members[: data.draw(st.integers(1, len(members)))]
    ring = {(a, linked_to(a), b) for a, b in zip(members, members[1:] + members[:1], strict=True)}
    extra = link_options(model)
    links = frozenset(
        ring | (data.draw(st.sets(st.sampled_from(extra), max_size=6)) if extra else set())
    )
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_dict(policy(model, World(frozenset(), links)))
    cycle = named_cycle(caught.value.problems[0])
    assert is_real_cycle(cycle, links), (cycle, sorted(links))


@PROPERTIES
@given(models(all_relations=True), st.data())
def test_the_directory_refuses_exactly_the_tuples_that_close_a_cycle(
    model: Model, data: st.DataObject
) -> None:
    """A tuple closing a cycle is refused and decides nothing new; any other tuple lands."""
    world = data.draw(worlds(model))
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    subject = data.draw(st.sampled_from(model.instances))
    obj = data.draw(st.sampled_from(model.instances))
    link = (subject, linked_to(subject), obj)
    payload = {"subject": name(subject), "relation": link[1], "object": name(obj)}
    before_facts = engine.facts
    before = keyed_table(engine, model, "default"), listing_table(engine, model, "default")
    if link in world.links:
        with pytest.raises(DirectoryError, match="the tuple exists"):
            asyncio.run(engine.api.relationship_tuples.create(payload))
        assert engine.facts == before_facts
        return
    if reaches(world.links, obj, subject):
        with pytest.raises(DirectoryError) as caught:
            asyncio.run(engine.api.relationship_tuples.create(payload))
        assert "it would close a cycle" in caught.value.problem
        assert engine.facts == before_facts
        assert (keyed_table(engine, model, "default"), listing_table(engine, model, "default")) == (
            before
        )
        return
    if crosses_tenants([], world.known, link):
        with pytest.raises(DirectoryError, match="a tuple lives in one tenant"):
            asyncio.run(engine.api.relationship_tuples.create(payload))
        assert engine.facts == before_facts
        return
    asyncio.run(engine.api.relationship_tuples.create(payload))
    after = World(world.assigned, world.links | {link})
    assert engine.facts.has_link(subject, link[1], obj)
    assert allowed(keyed_table(engine, model, "default")) == expected_keyed(
        model, reference(model, after)
    )
