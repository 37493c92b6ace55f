"""Relations and role derivation (ReBAC): who holds a resource role without being assigned it.

A resource type declares relations (``project: {relations: {parent: workspace}}``);
a tuple ``workspace:w1 parent project:p1`` links two instances; and a resource
role may be derived along a relation (``owner`` of a project is granted to
users with ``admin`` on its parent workspace). Derivations chain -- a folder's
parent folder's admin edits the files of both -- up to :data:`MAX_CHAIN`
tuples, and the tuples never form a cycle: both are checked when the policy is
loaded and at every change through the directory.

Two searches answer the engine's questions. :func:`derive` walks up from the
instance a request names to an instance where the user was assigned a role,
and returns the path, so a decision's reason names it. :func:`reach` walks
down from every instance where the user was assigned a role, for the listing
rule ("holds the role on some instance of the type").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol

from permit_guard.engines.local.policy import Policy

__all__ = [
    "MAX_CHAIN",
    "Derivation",
    "Instance",
    "Link",
    "RoleRules",
    "Step",
    "chain_problem",
    "derive",
    "describe",
    "graph_problem",
    "instance_of",
    "longest_chain",
    "reach",
]

#: The most relationship tuples one chain may have (folder -> folder -> ... -> file).
MAX_CHAIN: Final = 16

#: ``(resource type, instance key)``.
Instance = tuple[str, str]

#: ``(relation, resource type, instance key)``: the other end of a tuple, and its relation.
Link = tuple[str, str, str]


def instance_of(name: str) -> Instance:
    """``("project", "acme-1")`` of a checked ``"project:acme-1"`` (split at the first colon)."""
    type_name, _, key = name.partition(":")
    return type_name, key


class _HasLinks(Protocol):
    @property
    def parents(self) -> Mapping[Instance, tuple[Link, ...]]: ...


class Step(NamedTuple):
    """A role held on an instance, and the relation it was derived along (``None``: assigned)."""

    role: str
    type_name: str
    key: str
    relation: str | None


@dataclass(frozen=True, slots=True)
class Derivation:
    """One way a resource role of a type is derived: ``role`` on the subject of ``relation``."""

    role: str
    subject_type: str
    relation: str


@dataclass(frozen=True, slots=True)
class RoleRules:
    """The policy's derivations, indexed both ways.

    Attributes:
        derived_from: ``(resource type, role)`` -> how that role may be derived.
        leads_to: ``(subject type, subject role)`` -> ``(relation, object type,
            object role)`` it derives.
    """

    derived_from: Mapping[tuple[str, str], tuple[Derivation, ...]]
    leads_to: Mapping[tuple[str, str], tuple[tuple[str, str, str], ...]]

    @classmethod
    def build(cls, policy: Policy) -> RoleRules:
        """Index the derivations of a checked policy."""
        derived_from: dict[tuple[str, str], list[Derivation]] = {}
        leads_to: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for type_name, resource in policy.resources.items():
            for role_name, role in resource.roles.items():
                for rule in role.granted_to.users_with_role:
                    derivation = Derivation(rule.role, rule.on_resource, rule.linked_by_relation)
                    derived_from.setdefault((type_name, role_name), []).append(derivation)
                    leads_to.setdefault((rule.on_resource, rule.role), []).append(
                        (rule.linked_by_relation, type_name, role_name)
                    )
        return cls(
            derived_from=MappingProxyType({k: tuple(v) for k, v in derived_from.items()}),
            leads_to=MappingProxyType({k: tuple(v) for k, v in leads_to.items()}),
        )

    def __bool__(self) -> bool:
        return bool(self.derived_from)


def derive(
    rules: RoleRules,
    assigned: Mapping[tuple[str, str, str], tuple[str, ...]],
    parents: Mapping[Instance, tuple[Link, ...]],
    user: str,
    instance: Instance,
    wanted: Iterable[str],
) -> tuple[Step, ...] | None:
    """The path by which ``user`` holds one of ``wanted`` on ``instance``, or ``None``.

    Args:
        rules: The derivations.
        assigned: ``(user, type, key)`` -> resource roles assigned there.
        parents: Object instance -> ``(relation, subject type, subject key)`` of its tuples.
        user: The user key.
        instance: The instance the request names.
        wanted: The resource roles that would grant the action.

    Returns:
        The steps from the assigned role to the wanted one (one step when it
        was assigned on ``instance`` itself).
    """
    failed: set[tuple[str, str, str]] = set()

    def search(type_name: str, key: str, roles: tuple[str, ...], depth: int) -> list[Step] | None:
        held = assigned.get((user, type_name, key), ())
        for role in roles:
            if role in held:
                return [Step(role, type_name, key, None)]
        if depth >= MAX_CHAIN:
            return None
        for role in roles:
            if (type_name, key, role) in failed:
                continue
            for rule in rules.derived_from.get((type_name, role), ()):
                for relation, subject_type, subject_key in parents.get((type_name, key), ()):
                    if relation != rule.relation or subject_type != rule.subject_type:
                        continue
                    path = search(subject_type, subject_key, (rule.role,), depth + 1)
                    if path is not None:
                        path.append(Step(role, type_name, key, relation))
                        return path
            failed.add((type_name, key, role))
        return None

    found = search(instance[0], instance[1], tuple(wanted), 0)
    return None if found is None else tuple(found)


def reach(
    rules: RoleRules,
    holdings: Iterable[tuple[str, str, str]],
    children: Mapping[Instance, tuple[Link, ...]],
    type_name: str,
    wanted: frozenset[str],
) -> tuple[Step, ...] | None:
    """A path from a held role to one of ``wanted`` on SOME instance of ``type_name``.

    Args:
        rules: The derivations.
        holdings: ``(type, key, role)`` the user was assigned.
        children: Subject instance -> ``(relation, object type, object key)`` of its tuples.
        type_name: The resource type a list entry names.
        wanted: The resource roles that would grant the action.

    Returns:
        The steps, or ``None`` when no derivation reaches a wanted role.
    """
    came_from: dict[tuple[str, str, str], tuple[tuple[str, str, str], str] | None] = {}
    frontier: list[tuple[str, str, str]] = []
    for held in holdings:
        if held not in came_from:
            came_from[held] = None
            frontier.append(held)
    for _ in range(MAX_CHAIN):
        following: list[tuple[str, str, str]] = []
        for node in frontier:
            held_type, held_key, held_role = node
            derives = rules.leads_to.get((held_type, held_role), ())
            if not derives:
                continue
            links = children.get((held_type, held_key), ())
            for relation, object_type, object_role in derives:
                for link_relation, link_type, object_key in links:
                    if link_relation != relation or link_type != object_type:
                        continue
                    step = (object_type, object_key, object_role)
                    if step in came_from:
                        continue
                    came_from[step] = (node, relation)
                    if object_type == type_name and object_role in wanted:
                        return _path(came_from, step)
                    following.append(step)
        if not following:
            return None
        frontier = following
    return None


def _path(
    came_from: Mapping[tuple[str, str, str], tuple[tuple[str, str, str], str] | None],
    last: tuple[str, str, str],
) -> tuple[Step, ...]:
    steps: list[Step] = []
    node: tuple[str, str, str] | None = last
    relation: str | None = None
    while node is not None:
        previous = came_from[node]
        relation = None if previous is None else previous[1]
        steps.append(Step(node[2], node[0], node[1], relation))
        node = None if previous is None else previous[0]
    return tuple(reversed(steps))


def describe(path: tuple[Step, ...]) -> str:
    """``'admin' on workspace:w1 -parent-> 'owner' on project:p1``, for reasons."""
    parts = [f"{path[0].role!r} on {path[0].type_name}:{path[0].key}"]
    for step in path[1:]:
        parts.append(f"-{step.relation}-> {step.role!r} on {step.type_name}:{step.key}")
    return " ".join(parts)


def chain_problem(
    parents: Mapping[Instance, tuple[Link, ...]],
    children: Mapping[Instance, tuple[Link, ...]],
    subject: Instance,
    obj: Instance,
) -> str | None:
    """What adding the tuple ``subject -> obj`` would break, or ``None``.

    A tuple must not close a cycle (``obj`` already above ``subject``) nor
    make a chain longer than :data:`MAX_CHAIN` tuples. Only the instances
    above ``subject`` and below ``obj`` are visited.
    """
    above = longest_chain(parents, subject, forbidden=obj)
    if above is None:
        return (
            f"it would close a cycle: {subject[0]}:{subject[1]} is already related, "
            f"directly or through others, to {obj[0]}:{obj[1]}"
        )
    below = longest_chain(children, obj, forbidden=subject)
    if below is None:
        return "it would close a cycle"
    if above + 1 + below > MAX_CHAIN:
        return f"it would make a chain of {above + 1 + below} tuples (at most {MAX_CHAIN})"
    return None


def longest_chain(
    edges: Mapping[Instance, tuple[Link, ...]],
    start: Instance,
    *,
    forbidden: Instance | None = None,
    memo: dict[Instance, int] | None = None,
) -> int | None:
    """The longest chain of tuples from ``start`` along ``edges``.

    Returns ``None`` when the walk meets ``forbidden`` or ``start`` again (a
    cycle). Chains are followed at most :data:`MAX_CHAIN` + 1 tuples deep, so
    anything longer reads as too long without walking on. ``memo`` may be
    shared between calls over the same edges (whole-graph checks).
    """
    best = {} if memo is None else memo
    on_path: set[Instance] = set()

    def longest(node: Instance, depth: int) -> int | None:
        if node == forbidden or node in on_path:
            return None
        if node in best:
            return best[node]
        if depth > MAX_CHAIN:
            return 0
        on_path.add(node)
        length = 0
        for _, type_name, key in edges.get(node, ()):
            sub = longest((type_name, key), depth + 1)
            if sub is None:
                return None
            length = max(length, sub + 1)
        on_path.discard(node)
        if depth + length <= MAX_CHAIN:  # not cut short by the depth bound
            best[node] = length
        return length

    return longest(start, 0)


def graph_problem(facts: _HasLinks) -> str | None:
    """What is wrong with all the tuples at once (a cycle, a chain too long), or ``None``.

    Each instance is walked once (upwards, from object to subject), so this
    costs time in proportion to the tuples.
    """
    parents = facts.parents
    depth: dict[Instance, int] = {}  # the longest chain above an instance, once known
    for start in parents:
        if start in depth:
            continue
        path: list[Instance] = [start]
        on_path = {start}
        stack = [iter(parents.get(start, ()))]
        while stack:
            edge = next(stack[-1], None)
            if edge is None:
                node = path.pop()
                on_path.discard(node)
                stack.pop()
                depth[node] = max(
                    (depth[(t, k)] + 1 for _, t, k in parents.get(node, ())), default=0
                )
                if depth[node] > MAX_CHAIN:
                    return (
                        f"a chain of more than {MAX_CHAIN} tuples leads up from "
                        f"{node[0]}:{node[1]} (at most {MAX_CHAIN})"
                    )
                continue
            above = (edge[1], edge[2])
            if above in on_path:
                # Walked from object up to subject; told from subject to object.
                cycle = [above, *reversed(path[path.index(above) :])]
                return "the tuples form a cycle: " + " -> ".join(f"{t}:{k}" for t, k in cycle)
            if above not in depth:
                path.append(above)
                on_path.add(above)
                stack.append(iter(parents.get(above, ())))
    return None
