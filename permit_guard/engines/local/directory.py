"""The runtime directory: changing the embedded engine's facts in ``permit.api``'s shape.

``engine.api`` has the parts and methods of ``permit.Permit().api`` that
change what a decision reads, taking the same payloads::

    await engine.api.resource_instances.create(
        {"key": "acme-1", "resource": "project", "tenant": "acme", "attributes": {"priority": 2}}
    )
    await engine.api.role_assignments.assign(
        {"user": "carol", "role": "owner", "tenant": "acme", "resource_instance": "project:acme-1"}
    )
    await engine.api.relationship_tuples.create(
        {"subject": "workspace:w1", "relation": "parent", "object": "project:acme-1"}
    )

So a tool written against ``permit.api`` runs unchanged on the embedded
engine. Every change is checked like the policy file (an unknown role,
resource type or relation, a tuple that would close a cycle), refused with a
:class:`~permit_guard.exceptions.DirectoryError` that changes nothing, or
published whole for the next decision (see :mod:`~permit_guard.engines.local.facts`),
and logged to ``permit_guard.audit``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from permit_guard.engines.local.facts import Facts, FactStore, Model
from permit_guard.engines.local.payloads import (
    InstanceCreate,
    InstanceUpdate,
    RoleAssignment,
    TupleChange,
    UserSync,
    read_payload,
)
from permit_guard.engines.local.policy import Policy
from permit_guard.engines.local.references import (
    resource_role_problem,
    role_problem,
    split_instance,
    tuple_problem,
    unknown,
)
from permit_guard.engines.local.relations import chain_problem
from permit_guard.exceptions import DirectoryError

__all__ = ["Directory"]

audit = logging.getLogger("permit_guard.audit")


R = TypeVar("R")


def _audited(
    operation: str,
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """Audit every refusal of ``operation``, however early it is found, as one WARNING line."""

    def decorate(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        @functools.wraps(method)
        async def audited(self: Any, *args: object) -> R:
            try:
                # The operations never wait while holding it: they check and change at once.
                with self._directory.lock:
                    return await method(self, *args)
            except DirectoryError as exc:
                given: object = [_plain(a) for a in args]
                event = {"event": "directory", "operation": operation, "refused": exc.problem}
                audit.warning(_line(event, given))
                raise

        return audited

    return decorate


def _line(event: dict[str, Any], given: object) -> str:
    """The audit line of a refusal; a payload that cannot be written is named, not written."""
    try:
        return json.dumps(event | {"change": given}, default=str)
    except ValueError:  # an integer of thousands of digits, say
        return json.dumps(event | {"change": "(a payload that cannot be written as JSON)"})


def _plain(payload: object) -> object:
    """A payload as it can be logged: a mapping, an SDK model's fields, or its text."""
    if isinstance(payload, Mapping | str):
        return dict(payload) if isinstance(payload, Mapping) else payload
    dump = getattr(payload, "model_dump", None) or getattr(payload, "dict", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return repr(payload)
    return repr(payload)


class Directory:
    """``engine.api``: role assignments, users, resource instances and relationship tuples."""

    def __init__(self, store: FactStore[Any]) -> None:
        """Bind the directory to the engine's model and facts.

        Args:
            store: The model changes are checked against, and the facts the
                engine decides with.
        """
        self._store = store
        self.role_assignments = RoleAssignments(self)
        self.users = Users(self)
        self.resource_instances = ResourceInstances(self)
        self.relationship_tuples = RelationshipTuples(self)

    @property
    def policy(self) -> Policy:
        """The model changes are checked against (the current one, after a reload)."""
        model: Model = self._store.model
        return model.policy

    @property
    def lock(self) -> threading.RLock:
        """Held by a whole operation, so a reload never comes between its checks and its change."""
        return self._store.lock

    def __repr__(self) -> str:
        return "Directory(role_assignments, users, resource_instances, relationship_tuples)"

    def change(
        self, operation: str, payload: dict[str, Any], make: Callable[[Facts], Facts]
    ) -> None:
        """Publish ``make(facts)`` and audit it; a :class:`DirectoryError` changes nothing."""
        # The audit line first: a change that cannot be audited is not made.
        line = json.dumps(
            {"event": "directory", "operation": operation, "change": payload}, default=str
        )
        self._store.change(make)
        audit.info(line)

    def instance(self, name: str, operation: str) -> tuple[str, str]:
        """``(type, key)`` of ``"<type>:<key>"``, or a :class:`DirectoryError`."""
        found, problem = split_instance(self.policy, name)
        if found is None:
            raise DirectoryError(operation, f"resource instance {name!r}: {problem}")
        return found

    def assignment(self, payload: object, operation: str, *, assign: bool) -> dict[str, Any]:
        """Assign or unassign a role in a tenant or on a resource instance; the assignment."""
        a = read_payload(RoleAssignment, payload, operation=operation)
        record = a.model_dump(exclude_none=True)
        if a.resource_instance is None:
            problem = role_problem(self.policy, a.role)
            if problem:
                raise DirectoryError(operation, problem)

            def tenant_role(facts: Facts) -> Facts:
                roles = facts.user_roles.get((a.in_tenant, a.user), ())
                return facts.with_tenant_roles(
                    a.in_tenant, a.user, _toggled(roles, a.role, assign, operation, a)
                )

            self.change(operation, record, tenant_role)
            return a.model_dump()
        instance = self.instance(a.resource_instance, operation)
        problem = resource_role_problem(self.policy, instance[0], a.role)
        if problem:
            raise DirectoryError(operation, problem)

        def instance_role(facts: Facts) -> Facts:
            known = facts.instances.get(instance)
            if assign and known is not None and a.tenant is not None and known[0] != a.tenant:
                raise DirectoryError(
                    operation,
                    f"resource instance {a.resource_instance!r} is in tenant {known[0]!r}, "
                    f"not {a.tenant!r}",
                )
            roles = facts.instance_roles.get((a.user, *instance), ())
            return facts.with_instance_roles(
                a.user, instance, _toggled(roles, a.role, assign, operation, a)
            )

        self.change(operation, record, instance_role)
        return a.model_dump()


def _toggled(
    roles: tuple[str, ...], role: str, add: bool, operation: str, a: RoleAssignment
) -> tuple[str, ...]:
    where = f"on {a.resource_instance!r}" if a.resource_instance else f"in tenant {a.in_tenant!r}"
    if add:
        if role in roles:
            raise DirectoryError(operation, f"user {a.user!r} already has role {role!r} {where}")
        return (*roles, role)
    if role not in roles:
        raise DirectoryError(operation, f"user {a.user!r} has no role {role!r} {where}")
    return tuple(r for r in roles if r != role)


class RoleAssignments:
    """``permit.api.role_assignments``: ``assign`` and ``unassign``."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @_audited("role_assignments.assign")
    async def assign(self, assignment: object) -> dict[str, Any]:
        """Assign a role: ``{"user", "role", "tenant"}``, plus ``"resource_instance"`` for
        a resource role (``"project:acme-1"``). Takes effect on the next decision.

        Raises:
            DirectoryError: An unknown role or resource type, a role the user
                already has, or an instance in another tenant.
        """
        return self._directory.assignment(assignment, "role_assignments.assign", assign=True)

    @_audited("role_assignments.unassign")
    async def unassign(self, unassignment: object) -> None:
        """Unassign a role (the same payload as :meth:`assign`).

        Raises:
            DirectoryError: An unknown role, or one the user does not have there.
        """
        self._directory.assignment(unassignment, "role_assignments.unassign", assign=False)


class Users:
    """``permit.api.users``: ``sync``, ``assign_role`` and ``unassign_role``."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @_audited("users.sync")
    async def sync(self, user: object) -> dict[str, Any]:
        """Create or update a user: ``{"key", "attributes"}`` (``email`` etc. accepted).

        The user's attributes join their requests' attributes, as the policy
        file's do; a request's own attributes win.
        """
        u = read_payload(UserSync, user, operation="users.sync")
        record = {"key": u.key, "attributes": dict(u.attributes or {})}
        self._directory.change(
            "users.sync", record, lambda facts: facts.with_user(u.key, u.attributes or {})
        )
        return record

    @_audited("users.assign_role")
    async def assign_role(self, assignment: object) -> dict[str, Any]:
        """Same as ``role_assignments.assign``."""
        return self._directory.assignment(assignment, "users.assign_role", assign=True)

    @_audited("users.unassign_role")
    async def unassign_role(self, unassignment: object) -> None:
        """Same as ``role_assignments.unassign``."""
        self._directory.assignment(unassignment, "users.unassign_role", assign=False)


class ResourceInstances:
    """``permit.api.resource_instances``: ``create``, ``update``, ``delete``."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @_audited("resource_instances.create")
    async def create(self, instance_data: object) -> dict[str, Any]:
        """Make an instance known: ``{"key", "resource", "tenant", "attributes"}``.

        From the next decision, a request naming it is decided in its tenant,
        with its attributes winning over the client's.

        Raises:
            DirectoryError: An unknown resource type, or an instance that exists.
        """
        operation = "resource_instances.create"
        i = read_payload(InstanceCreate, instance_data, operation=operation)
        if i.resource not in self._directory.policy.resources:
            known = list(self._directory.policy.resources)
            raise DirectoryError(operation, unknown("resource type", i.resource, known))
        instance = (i.resource, i.key)

        def create(facts: Facts) -> Facts:
            if instance in facts.instances:
                raise DirectoryError(operation, f"resource instance '{i.resource}:{i.key}' exists")
            problem = facts.linked_tenant_problem(instance, i.tenant)
            if problem:
                raise DirectoryError(operation, problem)
            return facts.with_instance(instance, i.tenant, i.attributes or {})

        record = i.model_dump() | {"attributes": dict(i.attributes or {})}
        self._directory.change(operation, record, create)
        return record

    @_audited("resource_instances.update")
    async def update(self, instance_key: str, instance_data: object) -> dict[str, Any]:
        """Replace the attributes of ``instance_key`` (``"project:acme-1"``): ``{"attributes"}``.

        Raises:
            DirectoryError: A malformed key, or an instance that does not exist.
        """
        operation = "resource_instances.update"
        instance = self._directory.instance(instance_key, operation)
        u = read_payload(InstanceUpdate, instance_data, operation=operation)
        found: dict[str, Any] = {}

        def update(facts: Facts) -> Facts:
            known = facts.instances.get(instance)
            if known is None:
                raise DirectoryError(operation, f"no resource instance {instance_key!r}")
            found.update(key=instance[1], resource=instance[0], tenant=known[0])
            return facts.with_instance(instance, known[0], u.attributes or {})

        record = {"instance": instance_key, "attributes": dict(u.attributes or {})}
        self._directory.change(operation, record, update)
        return found | {"attributes": dict(u.attributes or {})}

    @_audited("resource_instances.delete")
    async def delete(self, instance_key: str) -> None:
        """Forget ``instance_key``, with its tuples and the roles assigned on it.

        Raises:
            DirectoryError: A malformed key, or an instance that does not exist.
        """
        operation = "resource_instances.delete"
        instance = self._directory.instance(instance_key, operation)

        def delete(facts: Facts) -> Facts:
            if instance not in facts.instances:
                raise DirectoryError(operation, f"no resource instance {instance_key!r}")
            return facts.without_instance(instance)

        self._directory.change(operation, {"instance": instance_key}, delete)


class RelationshipTuples:
    """``permit.api.relationship_tuples``: ``create`` and ``delete``."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def _read(self, tuple_data: object, operation: str) -> tuple[TupleChange, Any, Any]:
        t = read_payload(TupleChange, tuple_data, operation=operation)
        subject = self._directory.instance(t.subject, operation)
        obj = self._directory.instance(t.object, operation)
        problem = tuple_problem(self._directory.policy, subject[0], t.relation, obj[0])
        if problem:
            raise DirectoryError(operation, problem)
        return t, subject, obj

    @_audited("relationship_tuples.create")
    async def create(self, tuple_data: object) -> dict[str, Any]:
        """Link two instances: ``{"subject", "relation", "object"}`` (``"tenant"`` optional).

        Raises:
            DirectoryError: An undeclared relation, a subject of the wrong
                type, a tuple that exists, would close a cycle or make a chain
                too long, or a tenant other than the instances'.
        """
        operation = "relationship_tuples.create"
        t, subject, obj = self._read(tuple_data, operation)

        def create(facts: Facts) -> Facts:
            if facts.has_link(subject, t.relation, obj):
                raise DirectoryError(operation, "the tuple exists")
            problem = facts.tenant_problem(subject, obj, t.tenant) or chain_problem(
                facts.parents, facts.children, subject, obj
            )
            if problem:
                raise DirectoryError(operation, problem)
            return facts.with_link(subject, t.relation, obj)

        record = t.model_dump(exclude_none=True)
        self._directory.change(operation, record, create)
        return record

    @_audited("relationship_tuples.delete")
    async def delete(self, tuple_data: object) -> None:
        """Remove a tuple (``{"subject", "relation", "object"}``).

        Raises:
            DirectoryError: A tuple that does not exist.
        """
        operation = "relationship_tuples.delete"
        t, subject, obj = self._read(tuple_data, operation)

        def delete(facts: Facts) -> Facts:
            if not facts.has_link(subject, t.relation, obj):
                raise DirectoryError(operation, "no such tuple")
            return facts.without_link(subject, t.relation, obj)

        self._directory.change(operation, t.model_dump(exclude_none=True), delete)
