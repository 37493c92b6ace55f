"""The embedded policy engine: Permit's model (RBAC, ABAC, ReBAC) from a local file.

All the work is done when the policy is loaded: cross-references are checked,
conditions compiled, and indexes built from ``(resource type, action)`` to what
may grant it. A decision is then a few dictionary look-ups, plus the conditions
of the resource sets and user sets that could grant the action. The engine is
immutable after loading, so one instance serves any number of threads and tasks.

Example:
    >>> from permit_guard.model import AuthzRequest, Principal, Resource
    >>> engine = LocalPolicyEngine.from_dict(
    ...     {
    ...         "resources": {"mcp_server": {"actions": ["greet", "refund"]}},
    ...         "roles": {"viewer": {"grants": {"mcp_server": ["greet"]}}},
    ...         "users": {"bob": {"roles": ["viewer"]}},
    ...     }
    ... )
    >>> decision = engine.decide(
    ...     AuthzRequest(
    ...         user=Principal(key="bob"), action="greet", resource=Resource(type="mcp_server")
    ...     )
    ... )
    >>> decision.allowed, decision.reason
    (True, "role 'viewer' grants mcp_server:greet in tenant 'default'")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Self

from permit_guard.engines.local.conditions import Subject
from permit_guard.engines.local.directory import Directory
from permit_guard.engines.local.facts import Facts, FactStore, State
from permit_guard.engines.local.granting import (
    Trace,
    assigned_role,
    certainty,
    derived_role,
    how,
    set_admits,
)
from permit_guard.engines.local.indexes import DecisionIndex
from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.reading import read_policy_file, write_data_file
from permit_guard.engines.local.reload import PolicyWatcher
from permit_guard.exceptions import ConfigurationError
from permit_guard.explanation import ConditionTrace
from permit_guard.methods import LIST_METHODS
from permit_guard.model import AuthzRequest, Decision

__all__ = ["LISTING_METHODS", "LocalPolicyEngine", "is_listing"]

#: The MCP methods whose per-item checks are answered by the listing rule.
LISTING_METHODS: Final = frozenset(LIST_METHODS)


def is_listing(request: AuthzRequest) -> bool:
    """Whether a request checks an item for a list response (the listing rule applies).

    Args:
        request: The request; its resource attribute ``mcp_method`` tells.

    Returns:
        True when ``mcp_method`` is one of :data:`LISTING_METHODS`.
    """
    method = request.resource.attributes.get("mcp_method")
    # isinstance first: an unhashable value must not raise in the frozenset look-up.
    return isinstance(method, str) and method in LISTING_METHODS


class LocalPolicyEngine:
    """A policy engine that decides from a local policy file, without network I/O.

    A request is allowed when a role the user has in the resource's tenant, a
    user set the user belongs to, or a resource role the user holds on the
    resource instance grants the action on the resource type or on a resource
    set whose condition the request meets. For list responses, a resource-set
    grant counts unless its condition is false whatever the missing arguments
    are (see ``docs/policy-file.md``, "Listing").

    Build it with :meth:`from_file` or :meth:`from_dict`.
    """

    __slots__ = ("_directory", "_store", "_watcher")

    def __init__(self, loaded: LoadedPolicy) -> None:
        """Build the decision indexes of a checked policy.

        Args:
            loaded: A policy from :func:`~permit_guard.engines.local.loading.load_policy`
                or :func:`~permit_guard.engines.local.loading.read_policy_file`.
        """
        self._store = FactStore(DecisionIndex.build(loaded), loaded.facts)
        self._directory: Directory | None = None
        self._watcher: PolicyWatcher | None = None

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        data: str | os.PathLike[str] | None = None,
        reload: bool = False,
    ) -> Self:
        """Load a policy file (``.yaml``, ``.yml`` or ``.json``).

        Args:
            path: The policy file.
            data: A data file (e.g. written by :meth:`save`) whose users,
                resource instances and relationships replace the policy file's.
            reload: Watch the file (and the data file) and load every change
                that is valid, whole, without a restart; an invalid edit keeps
                the last good policy (see :mod:`~permit_guard.engines.local.reload`).
                Stop watching with :meth:`close`.

        Returns:
            The engine.

        Raises:
            PolicyFileError: Naming the file and every problem found in it.
        """
        engine = cls(read_policy_file(path, data=data))
        if reload:
            engine._watcher = PolicyWatcher(engine, path, data)
        return engine

    def reload(self) -> bool:
        """Read the watched files again now, as a change to them would (``reload=True`` only).

        Returns:
            Whether a new policy was swapped in (``False``: the last good one stays).

        Raises:
            ConfigurationError: When the engine was not loaded with ``reload=True``.
        """
        if self._watcher is None:
            raise ConfigurationError(
                f"{self!r} does not watch its policy: load it with from_file(path, reload=True)"
            )
        return self._watcher.reload()

    def swap(self, loaded: LoadedPolicy, facts: Facts) -> None:
        """Publish a new policy and its facts at once: the next decision sees both."""
        self._store.replace(DecisionIndex.build(loaded), facts)

    def close(self) -> None:
        """Stop watching the policy file (a no-op without ``reload=True``)."""
        if self._watcher is not None:
            self._watcher.stop()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Self:
        """Load a policy already parsed into a mapping.

        Args:
            data: The policy, in the same form as the file.
            source: How error messages name the policy.

        Returns:
            The engine.

        Raises:
            PolicyFileError: Naming ``source`` and every problem found.
        """
        return cls(load_policy(data, source=source))

    @property
    def name(self) -> str:
        """``"local"``, for audit events."""
        return "local"

    @property
    def source(self) -> str:
        """Where the policy came from (a file path, or the ``source`` given to from_dict)."""
        return self._store.model.loaded.source

    @property
    def policy(self) -> LoadedPolicy:
        """The checked policy the engine decides with (the model; facts change at run time)."""
        return self._store.model.loaded

    @property
    def facts(self) -> Facts:
        """The facts the next decision reads: a read-only snapshot that never changes.

        Change them through :attr:`api`.
        """
        return self._store.facts.read_only()

    @property
    def api(self) -> Directory:
        """The runtime directory, in the shape of ``permit.Permit().api``.

        Changes through it (role assignments, resource instances, relationship
        tuples) are validated like the policy file and take effect on the next
        decision. See ``docs/policy-file.md``, "Changing facts at run time".
        """
        if self._directory is None:
            self._directory = Directory(self._store)
        return self._directory

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the current facts to a data file (YAML or JSON), kept apart from the policy.

        Load it back with ``LocalPolicyEngine.from_file(policy, data=path)``.

        Args:
            path: The data file (``.yaml``, ``.yml`` or ``.json``).
        """
        write_data_file(path, self._store.facts)

    def __repr__(self) -> str:
        return f"LocalPolicyEngine(source={self.source!r})"

    async def check(self, request: AuthzRequest) -> Decision:
        """Decide one request (see :meth:`decide`).

        Args:
            request: The request.

        Returns:
            The decision.
        """
        return self.decide(request)

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Decide many requests in one pass, without yielding between them.

        Args:
            requests: The requests.

        Returns:
            One decision per request, in request order.
        """
        decide = self.decide
        return [decide(request) for request in requests]

    def explain(self, request: AuthzRequest) -> Decision:
        """Decide one request, and say how: the decision with its explanation.

        The decision is the one :meth:`decide` gives; its ``explanation`` lists
        the caller's roles per tenant, every grant considered in order and
        every condition evaluated with the values seen.

        Args:
            request: The request.

        Returns:
            The decision, with ``explanation`` set.
        """
        trace = Trace()
        state = self._store.state
        facts = state.facts
        seen = facts.in_instance(request) if facts.instances else request
        decision = self.decide(request, trace, state)
        return replace(
            decision, explanation=trace.explanation(facts, seen, is_listing(seen), decision)
        )

    def decide(
        self,
        request: AuthzRequest,
        trace: Trace | None = None,
        state: State[DecisionIndex] | None = None,
    ) -> Decision:
        """Decide one request, synchronously.

        Unknown users, resource types and actions are denied with a reason
        saying so; this never raises for the contents of a request.

        Args:
            request: The request.
            trace: Records what was considered (use :meth:`explain`).
            state: The model and facts to read (default: the current ones).

        Returns:
            The decision, whose reason names the role, user set or resource role
            that granted it, or says that none did.
        """
        # One read: the model and the facts of one generation, even across a reload.
        current = state or self._store.state
        model, facts = current.model, current.facts
        if facts.instances and request.resource.key is not None:
            request = facts.in_instance(request)
        resource = request.resource
        type_name = resource.type
        action = request.action
        user_key = request.user.key
        tenant = resource.tenant
        grants = model.grants.get((type_name, action))
        if grants is None:
            return _unknown_target(model, type_name, action)

        roles = facts.user_roles.get((tenant, user_key), ())
        for role in roles:
            if role in grants.roles:
                reason = f"role {role!r} grants {type_name}:{action} in tenant {tenant!r}"
                if trace is not None:
                    trace.add("role", role, True, f"role {role!r} grants {type_name}:{action}")
                return Decision(allowed=True, reason=reason)
        if trace is not None:
            for role in roles:
                trace.add("role", role, False, f"role {role!r} grants {type_name}:{action}")

        listing = is_listing(request)
        if grants.resource_roles:
            held = assigned_role(facts, request, grants.resource_roles, listing, trace)
            if held is not None:
                return held

        subject: Subject | None = None
        if roles and grants.roles_via_sets:
            for role in roles:
                for resource_set in grants.roles_via_sets.get(role, ()):
                    if subject is None:
                        subject = facts.subject(request)
                    admitted, traced = set_admits(resource_set, subject, listing, trace)
                    if not admitted and trace is None:
                        continue
                    detail = f"role {role!r} grants {action} on resource set {resource_set.name!r}"
                    if trace is not None:
                        granted = certainty(traced) if admitted else False
                        trace.add("role-on-set", role, granted, detail, traced)
                    if admitted:
                        return Decision(
                            allowed=True, reason=f"{detail} in tenant {tenant!r} {how(listing)}"
                        )

        if grants.user_sets:
            if subject is None:
                subject = facts.subject(request)
            for grant in grants.user_sets:
                # User sets are about who the caller is: always two-valued, even for lists.
                member = grant.condition.holds(subject)
                traced = ()
                if trace is not None:
                    inner = grant.condition.explain(subject, False)
                    title = f"user set {grant.name!r}"
                    traced = (ConditionTrace(text=title, value=member, children=(inner,)),)
                if grant.resource_set is None:
                    detail = f"user set {grant.name!r} grants {type_name}:{action}"
                    if trace is not None:
                        trace.add("user-set", grant.name, member, detail, traced)
                    if member:
                        return Decision(allowed=True, reason=detail)
                    continue
                detail = (
                    f"user set {grant.name!r} grants {action} on resource set "
                    f"{grant.resource_set.name!r}"
                )
                admitted = False
                if member:
                    admitted, in_set = set_admits(grant.resource_set, subject, listing, trace)
                    traced += in_set
                if trace is not None:
                    granted = certainty(traced) if admitted else False
                    trace.add("user-set", grant.name, granted, detail, traced)
                if admitted:
                    return Decision(allowed=True, reason=f"{detail} {how(listing)}")

        if grants.resource_roles and model.rules:
            # Last: walking the tuples costs most, and whatever granted above is cheaper.
            held = derived_role(model.rules, facts, request, grants.resource_roles, listing, trace)
            if held is not None:
                return held

        if user_key not in facts.user_attributes:
            return Decision(
                allowed=False,
                reason=(
                    f"user {user_key!r} is not in the policy and no user set grants "
                    f"{type_name}:{action}"
                ),
            )
        return Decision(
            allowed=False,
            reason=(
                f"no role, user set or resource role of user {user_key!r} in tenant "
                f"{tenant!r} grants {type_name}:{action}"
            ),
        )


def _unknown_target(model: DecisionIndex, type_name: str, action: str) -> Decision:
    actions = model.resource_actions.get(type_name)
    if actions is None:
        reason = f"unknown resource type {type_name!r}: nothing grants {type_name}:{action}"
    else:
        reason = f"resource type {type_name!r} has no action {action!r}"
    return Decision(allowed=False, reason=reason)
