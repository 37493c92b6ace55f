"""The facts a decision reads: who holds which role where, the instances, their tuples.

The policy's model (resource types, roles, grants, derivations) is fixed when
the policy is loaded; the facts are what a server may change while it runs,
through :attr:`LocalPolicyEngine.api <permit_guard.engines.local.LocalPolicyEngine.api>`.
A :class:`Facts` is a snapshot that is never changed once published: a change
builds a new snapshot, copying only the indexes it touches, and the engine
swaps it in with one assignment. A decision reads one snapshot from start to
end, so it never sees half a change, and readers never wait for writers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

from permit_guard.engines.local.conditions import Subject
from permit_guard.engines.local.policy import Policy
from permit_guard.engines.local.relations import Instance, Link, Step, instance_of
from permit_guard.model import AuthzRequest, Resource

__all__ = ["FactStore", "Facts", "Model", "State", "as_known"]

K = TypeVar("K")
V = TypeVar("V")

#: ``(resource type, instance key, resource role)``.
Holding = tuple[str, str, str]


@dataclass(frozen=True, kw_only=True, slots=True)
class Facts:
    """One snapshot of the facts. Its mappings are never changed once published.

    Attributes:
        user_roles: ``(tenant, user key)`` -> the user's roles there.
        instance_roles: ``(user key, resource type, instance key)`` -> the
            resource roles assigned to the user on that instance.
        holdings: User key -> every ``(type, key, resource role)`` assigned to them.
        roles_on_type: ``(user key, resource type)`` -> {resource role: one
            instance it is assigned on}, for the listing rule.
        user_attributes: User key -> the user's attributes (known users).
        instances: ``(resource type, instance key)`` -> the instance's tenant
            and attributes.
        parents: Object instance -> ``(relation, subject type, subject key)``.
        children: Subject instance -> ``(relation, object type, object key)``.
    """

    user_roles: Mapping[tuple[str, str], tuple[str, ...]]
    instance_roles: Mapping[tuple[str, str, str], tuple[str, ...]]
    holdings: Mapping[str, tuple[Holding, ...]]
    roles_on_type: Mapping[tuple[str, str], Mapping[str, str]]
    user_attributes: Mapping[str, Mapping[str, Any]]
    instances: Mapping[Instance, tuple[str, Mapping[str, Any]]]
    parents: Mapping[Instance, tuple[Link, ...]]
    children: Mapping[Instance, tuple[Link, ...]]
    #: The listing rule's derivation searches, per (user, type, roles), for
    #: this snapshot only: a list asks the same question of every item.
    reached: dict[tuple[str, str, frozenset[str]], tuple[Step, ...] | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @classmethod
    def build(cls, policy: Policy) -> Facts:
        """The facts a checked policy (or data file) states."""
        user_roles: dict[tuple[str, str], tuple[str, ...]] = {}
        instance_roles: dict[tuple[str, str, str], tuple[str, ...]] = {}
        for user_key, user in policy.users.items():
            for tenant, tenant_roles in user.roles_by_tenant().items():
                if tenant_roles:
                    user_roles[tenant, user_key] = tuple(dict.fromkeys(tenant_roles))
            for instance, held_roles in user.resource_roles.items():
                if not held_roles:
                    continue
                instance_roles[user_key, *instance_of(instance)] = tuple(dict.fromkeys(held_roles))
        instances: dict[Instance, tuple[str, Mapping[str, Any]]] = {}
        for name, facts in policy.resource_instances.items():
            instances[instance_of(name)] = (facts.tenant, dict(facts.attributes))
        parents: dict[Instance, list[Link]] = {}
        children: dict[Instance, list[Link]] = {}
        for link in dict.fromkeys((t.subject, t.relation, t.object) for t in policy.relationships):
            subject, relation, obj = instance_of(link[0]), link[1], instance_of(link[2])
            parents.setdefault(obj, []).append((relation, *subject))
            children.setdefault(subject, []).append((relation, *obj))
        holdings: dict[str, list[Holding]] = {}
        for (user_key, type_name, key), role_names in instance_roles.items():
            holdings.setdefault(user_key, []).extend((type_name, key, r) for r in role_names)
        return cls(
            user_roles=user_roles,
            instance_roles=instance_roles,
            holdings={user: tuple(held) for user, held in holdings.items()},
            roles_on_type=_roles_on_type(holdings.items()),
            user_attributes={k: dict(u.attributes) for k, u in policy.users.items()},
            instances=instances,
            parents={k: tuple(v) for k, v in parents.items()},
            children={k: tuple(v) for k, v in children.items()},
        )

    # -- reading ---------------------------------------------------------------------------

    def read_only(self) -> Facts:
        """The same snapshot behind read-only views, for code outside the engine."""
        return Facts(
            **{
                name: MappingProxyType(getattr(self, name))
                for name, spec in self.__dataclass_fields__.items()
                if spec.init
            }
        )

    def in_instance(self, request: AuthzRequest) -> AuthzRequest:
        """The request as the facts about its instance say it is.

        A known instance is decided in its own tenant, whatever tenant the
        request names (so roles in another tenant grant nothing on it), and its
        attributes win over any the request carries under the same name.
        """
        resource = request.resource
        known = self.instances.get((resource.type, resource.key or ""))
        if known is None:
            return request
        # Built directly: dataclasses.replace takes about twice as long.
        return AuthzRequest(
            user=request.user,
            action=request.action,
            resource=as_known(resource, known),
            context=request.context,
        )

    def subject(self, request: AuthzRequest) -> Subject:
        """What conditions read: the user's known attributes, the request's own winning."""
        known = self.user_attributes.get(request.user.key)
        return Subject.of(request.user, known, request.resource)

    def tenant_problem(
        self, subject: Instance, obj: Instance, tenant: str | None = None
    ) -> str | None:
        """Why a tuple ``subject -> obj`` would cross tenants, or ``None``.

        A tuple lives in one tenant, as on Permit.io: both ends, where known,
        and the tenant the change names, if any, must agree. Otherwise the
        admin of a workspace in one tenant would derive roles on another's
        projects.
        """
        known = [(end, self.instances[end][0]) for end in (subject, obj) if end in self.instances]
        if tenant is not None:
            for end, there in known:
                if there != tenant:
                    return (
                        f"a tuple lives in one tenant: the tuple names {tenant!r}, "
                        f"{end[0]}:{end[1]} is in {there!r}"
                    )
        if len(known) == 2 and known[0][1] != known[1][1]:
            (first, one), (second, other) = known
            return (
                f"a tuple lives in one tenant: {first[0]}:{first[1]} is in {one!r}, "
                f"{second[0]}:{second[1]} is in {other!r}"
            )
        return None

    def linked_tenant_problem(self, instance: Instance, tenant: str) -> str | None:
        """Why ``instance`` cannot be in ``tenant``: a tuple links it to another tenant's."""
        for _, type_name, key in (
            *self.parents.get(instance, ()),
            *self.children.get(instance, ()),
        ):
            other = self.instances.get((type_name, key))
            if other is not None and other[0] != tenant:
                return (
                    f"it is linked to {type_name}:{key}, which is in tenant {other[0]!r}; "
                    "a tuple lives in one tenant"
                )
        return None

    # -- changes: each returns a new snapshot ------------------------------------------------

    def with_user(self, user_key: str, attributes: Mapping[str, Any] | None) -> Facts:
        """The user known, with ``attributes`` (``None``: keep the ones known)."""
        known = self.user_attributes.get(user_key)
        if known is not None and attributes is None:
            return self
        return replace(
            self,
            user_attributes=_set(self.user_attributes, user_key, dict(attributes or known or {})),
        )

    def with_tenant_roles(self, tenant: str, user_key: str, roles: tuple[str, ...]) -> Facts:
        """The user's roles in ``tenant`` replaced by ``roles``."""
        new = self.with_user(user_key, None)
        key = (tenant, user_key)
        table = _set(new.user_roles, key, roles) if roles else _drop(new.user_roles, key)
        return replace(new, user_roles=table)

    def with_instance_roles(
        self, user_key: str, instance: Instance, roles: tuple[str, ...]
    ) -> Facts:
        """The user's resource roles on ``instance`` replaced by ``roles``."""
        new = self.with_user(user_key, None)
        key = (user_key, *instance)
        table = _set(new.instance_roles, key, roles) if roles else _drop(new.instance_roles, key)
        held = tuple(h for h in new.holdings.get(user_key, ()) if h[:2] != instance)
        held += tuple((*instance, role) for role in roles)
        holdings = _set(new.holdings, user_key, held) if held else _drop(new.holdings, user_key)
        on_type = _roles_on_type([(user_key, held)]).get((user_key, instance[0]), {})
        pair = (user_key, instance[0])
        return replace(
            new,
            instance_roles=table,
            holdings=holdings,
            roles_on_type=(
                _set(new.roles_on_type, pair, on_type)
                if on_type
                else _drop(new.roles_on_type, pair)
            ),
        )

    def with_instance(
        self, instance: Instance, tenant: str, attributes: Mapping[str, Any]
    ) -> Facts:
        """``instance`` known in ``tenant`` with ``attributes``."""
        return replace(self, instances=_set(self.instances, instance, (tenant, dict(attributes))))

    def without_instance(self, instance: Instance) -> Facts:
        """``instance`` forgotten, with its tuples and the roles assigned on it.

        One pass over each index it touches, however many tuples and
        assignments go with it.
        """
        parents = dict(self.parents)
        children = dict(self.children)
        for table, other_side in ((parents, children), (children, parents)):
            for _, type_name, key in table.pop(instance, ()):
                other = (type_name, key)
                kept = tuple(e for e in other_side.get(other, ()) if (e[1], e[2]) != instance)
                if kept:
                    other_side[other] = kept
                else:
                    other_side.pop(other, None)
        instance_roles = {k: v for k, v in self.instance_roles.items() if k[1:] != instance}
        holders = {k[0] for k in self.instance_roles if k[1:] == instance}
        holdings = dict(self.holdings)
        roles_on_type = dict(self.roles_on_type)
        for user_key in holders:
            held = tuple(h for h in holdings.get(user_key, ()) if h[:2] != instance)
            if held:
                holdings[user_key] = held
            else:
                del holdings[user_key]
            on_type = _roles_on_type([(user_key, held)]).get((user_key, instance[0]))
            if on_type:
                roles_on_type[user_key, instance[0]] = on_type
            else:
                roles_on_type.pop((user_key, instance[0]), None)
        return replace(
            self,
            instances=_drop(self.instances, instance),
            parents=parents,
            children=children,
            instance_roles=instance_roles,
            holdings=holdings,
            roles_on_type=roles_on_type,
        )

    def has_link(self, subject: Instance, relation: str, obj: Instance) -> bool:
        """Whether the tuple ``subject relation obj`` is known."""
        return (relation, *subject) in self.parents.get(obj, ())

    def with_link(self, subject: Instance, relation: str, obj: Instance) -> Facts:
        """The tuple ``subject relation obj`` added (checked by the caller)."""
        up = (*self.parents.get(obj, ()), (relation, *subject))
        down = (*self.children.get(subject, ()), (relation, *obj))
        return replace(
            self, parents=_set(self.parents, obj, up), children=_set(self.children, subject, down)
        )

    def without_link(self, subject: Instance, relation: str, obj: Instance) -> Facts:
        """The tuple ``subject relation obj`` removed."""
        up = tuple(e for e in self.parents.get(obj, ()) if e != (relation, *subject))
        down = tuple(e for e in self.children.get(subject, ()) if e != (relation, *obj))
        return replace(
            self,
            parents=_set(self.parents, obj, up) if up else _drop(self.parents, obj),
            children=_set(self.children, subject, down) if down else _drop(self.children, subject),
        )

    def links(self) -> Iterable[tuple[Instance, str, Instance]]:
        """Every tuple, as ``(subject, relation, object)``."""
        for obj, edges in self.parents.items():
            for relation, type_name, key in edges:
                yield (type_name, key), relation, obj


def as_known(resource: Resource, known: tuple[str, Mapping[str, Any]]) -> Resource:
    """``resource`` in the tenant of its known instance, whose attributes win over the request's."""
    tenant, attributes = known
    merged = {**resource.attributes, **attributes} if attributes else resource.attributes
    # Facts cannot name a built-in attribute (mcp_method), so a call stays a call.
    return Resource(type=resource.type, key=resource.key, tenant=tenant, attributes=merged)


def _set(table: Mapping[K, V], key: K, value: V) -> dict[K, V]:
    copy = dict(table)
    copy[key] = value
    return copy


def _drop(table: Mapping[K, V], key: K) -> Mapping[K, V]:
    if key not in table:
        return table
    copy = dict(table)
    del copy[key]
    return copy


def _roles_on_type(
    holdings: Iterable[tuple[str, Iterable[Holding]]],
) -> dict[tuple[str, str], dict[str, str]]:
    found: dict[tuple[str, str], dict[str, str]] = {}
    for user_key, held in holdings:
        for type_name, key, role in held:
            found.setdefault((user_key, type_name), {}).setdefault(role, key)
    return found


class Model(Protocol):
    """The policy's model a snapshot of the facts is decided with (the engine's indexes)."""

    @property
    def policy(self) -> Policy:
        """The checked policy the model was built from."""
        ...


M = TypeVar("M", bound=Model)


@dataclass(frozen=True, slots=True)
class State(Generic[M]):
    """What one decision reads: a model and the facts, published together."""

    model: M
    facts: Facts
    #: What the engine worked out from this model and these facts alone (its
    #: decision plans). Every change publishes a new state, which starts empty,
    #: so nothing remembered outlives the facts it was worked out from.
    plans: dict[Hashable, Any] = field(default_factory=dict, init=False, compare=False, repr=False)


class FactStore(Generic[M]):
    """The current :class:`State` (model and facts), and the lock that orders changes to it.

    Readers take :attr:`state` once, without locking, and so see one model
    with the facts checked against it; writers build the next state under
    :attr:`lock` and publish it with one assignment. A reload of the policy
    publishes a new model and facts the same way.
    """

    __slots__ = ("lock", "state")

    def __init__(self, model: M, facts: Facts) -> None:
        self.state: State[M] = State(model, facts)
        #: Held by every change, and by a whole directory operation (re-entrant).
        self.lock = threading.RLock()

    @property
    def facts(self) -> Facts:
        """The current facts."""
        return self.state.facts

    @property
    def model(self) -> M:
        """The current model."""
        return self.state.model

    def change(self, make: Callable[[Facts], Facts]) -> Facts:
        """Publish ``make(current facts)`` with the current model; ``make`` may raise.

        Args:
            make: Builds the next snapshot from the current one.

        Returns:
            The published snapshot.
        """
        with self.lock:
            new = make(self.state.facts)
            self.state = State(self.state.model, new)
            return new

    def replace(self, model: M, facts: Facts) -> None:
        """Publish a new model and its facts (a reload of the policy)."""
        with self.lock:
            self.state = State(model, facts)
