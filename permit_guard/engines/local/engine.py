"""The embedded policy engine: Permit's model (RBAC, ABAC, ReBAC) from a local file.

All the work is done when the policy is loaded: cross-references are checked,
conditions compiled, and indexes built from ``(resource type, action)`` to what
may grant it. What the facts say about one question (tenant, user, type,
action, instance, list or call) is worked out on its first use and remembered
with that state of the facts (:mod:`~permit_guard.engines.local.plans`), so a
decision is then one dictionary look-up, plus the conditions of the resource
sets and user sets that could grant the action. A change of the facts or a
reload publishes a new state, remembering nothing, and counts from the next
decision on. Readers never wait, so one instance serves any number of threads
and tasks.

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
from typing import Any, Self

from permit_guard.engines.local.directory import Directory
from permit_guard.engines.local.facts import Facts, FactStore, State
from permit_guard.engines.local.granting import LISTING_METHODS, Trace, decide_in_full, is_listing
from permit_guard.engines.local.indexes import DecisionIndex
from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.plans import MAX_PLANS, Plan, PlanKey, plan
from permit_guard.engines.local.reading import read_policy_file, write_data_file
from permit_guard.engines.local.reload import PolicyWatcher
from permit_guard.exceptions import ConfigurationError
from permit_guard.model import AuthzRequest, Decision

__all__ = ["LISTING_METHODS", "LocalPolicyEngine", "is_listing"]


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
        if trace is not None:
            return decide_in_full(current, request, trace)
        resource = request.resource
        method = resource.attributes.get("mcp_method")
        key: PlanKey = (
            resource.tenant,
            request.user.key,
            resource.type,
            request.action,
            resource.key,
            # As is_listing(request) says, without the call: this is on every decision.
            isinstance(method, str) and method in LISTING_METHODS,
        )
        plans = current.plans
        found: Decision | Plan | None = plans.get(key)
        if found is None:
            if len(plans) >= MAX_PLANS:
                plans.clear()  # bounded: a plan costs one decision in full to work out again
            found = plans[key] = plan(current.model, current.facts, request, key[5])
        if isinstance(found, Decision):
            return found
        return found.decide(request)
