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
from typing import Any, Final, Self

from permit_guard.engines.local.conditions import Subject
from permit_guard.engines.local.directory import Directory
from permit_guard.engines.local.facts import Facts, FactStore
from permit_guard.engines.local.indexes import DecisionIndex, Grants, ResourceSet
from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.reading import read_policy_file, write_data_file
from permit_guard.engines.local.relations import derive, describe, reach
from permit_guard.methods import LIST_METHODS
from permit_guard.model import AuthzRequest, Decision

__all__ = ["LISTING_METHODS", "LocalPolicyEngine", "is_listing"]

#: Listing searches remembered per snapshot of the facts, at most.
_MAX_REACHED: Final = 4096

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

    __slots__ = ("_directory", "_grants", "_loaded", "_resource_actions", "_rules", "_store")

    def __init__(self, loaded: LoadedPolicy) -> None:
        """Build the decision indexes of a checked policy.

        Args:
            loaded: A policy from :func:`~permit_guard.engines.local.loading.load_policy`
                or :func:`~permit_guard.engines.local.loading.read_policy_file`.
        """
        index = DecisionIndex.build(loaded)
        self._loaded = loaded
        self._resource_actions: Mapping[str, frozenset[str]] = index.resource_actions
        self._grants: Mapping[tuple[str, str], Grants] = index.grants
        self._rules = index.rules
        self._store = FactStore(loaded.facts)
        self._directory: Directory | None = None

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, data: str | os.PathLike[str] | None = None
    ) -> Self:
        """Load a policy file (``.yaml``, ``.yml`` or ``.json``), read once.

        Args:
            path: The policy file.
            data: A data file (e.g. written by :meth:`save`) whose users,
                resource instances and relationships replace the policy file's.

        Returns:
            The engine.

        Raises:
            PolicyFileError: Naming the file and every problem found in it.
        """
        return cls(read_policy_file(path, data=data))

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
        return self._loaded.source

    @property
    def policy(self) -> LoadedPolicy:
        """The checked policy the engine was loaded from (the model; facts change at run time)."""
        return self._loaded

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
            self._directory = Directory(self._loaded.policy, self._store)
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

    def decide(self, request: AuthzRequest) -> Decision:
        """Decide one request, synchronously.

        Unknown users, resource types and actions are denied with a reason
        saying so; this never raises for the contents of a request.

        Args:
            request: The request.

        Returns:
            The decision, whose reason names the role, user set or resource role
            that granted it, or says that none did.
        """
        facts = self._store.facts
        if facts.instances and request.resource.key is not None:
            request = facts.in_instance(request)
        resource = request.resource
        type_name = resource.type
        action = request.action
        user_key = request.user.key
        tenant = resource.tenant
        grants = self._grants.get((type_name, action))
        if grants is None:
            return self._unknown_target(type_name, action)

        roles = facts.user_roles.get((tenant, user_key), ())
        for role in roles:
            if role in grants.roles:
                return Decision(
                    allowed=True,
                    reason=f"role {role!r} grants {type_name}:{action} in tenant {tenant!r}",
                )

        listing = is_listing(request)
        if grants.resource_roles:
            held = _assigned_role(facts, request, grants.resource_roles, listing)
            if held is not None:
                return held

        subject: Subject | None = None
        if roles and grants.roles_via_sets:
            for role in roles:
                for resource_set in grants.roles_via_sets.get(role, ()):
                    if subject is None:
                        subject = facts.subject(request)
                    if self._set_admits(resource_set, subject, listing):
                        return Decision(
                            allowed=True,
                            reason=(
                                f"role {role!r} grants {action} on resource set "
                                f"{resource_set.name!r} in tenant {tenant!r} "
                                f"{_how(listing)}"
                            ),
                        )

        if grants.user_sets:
            if subject is None:
                subject = facts.subject(request)
            for grant in grants.user_sets:
                # User sets are about who the caller is: always two-valued, even for lists.
                if not grant.condition.holds(subject):
                    continue
                if grant.resource_set is None:
                    return Decision(
                        allowed=True,
                        reason=f"user set {grant.name!r} grants {type_name}:{action}",
                    )
                if self._set_admits(grant.resource_set, subject, listing):
                    return Decision(
                        allowed=True,
                        reason=(
                            f"user set {grant.name!r} grants {action} on resource set "
                            f"{grant.resource_set.name!r} {_how(listing)}"
                        ),
                    )

        if grants.resource_roles and self._rules:
            # Last: walking the tuples costs most, and whatever granted above is cheaper.
            held = self._derived_role(facts, request, grants.resource_roles, listing)
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

    @staticmethod
    def _set_admits(resource_set: ResourceSet, subject: Subject, listing: bool) -> bool:
        # The listing rule: a list shows what the caller may call for SOME
        # arguments, so a resource-set grant counts unless its condition is
        # false whatever the absent arguments are. The call itself is checked
        # later with the real arguments, two-valued.
        if listing:
            return resource_set.condition.may_hold(subject) is not False
        return resource_set.condition.holds(subject)

    def _derived_role(
        self, facts: Facts, request: AuthzRequest, wanted: frozenset[str], listing: bool
    ) -> Decision | None:
        """An allow from a resource role derived along tuples, or ``None``."""
        resource = request.resource
        type_name, action, user_key = resource.type, request.action, request.user.key
        if resource.key is not None:
            instance = (type_name, resource.key)
            path = derive(
                self._rules, facts.instance_roles, facts.parents, user_key, instance, wanted
            )
            listed = ""
        elif listing:
            question = (user_key, type_name, wanted)
            if question in facts.reached:
                path = facts.reached[question]
            else:
                held = facts.holdings.get(user_key)
                path = reach(self._rules, held, facts.children, type_name, wanted) if held else None
                if len(facts.reached) >= _MAX_REACHED:
                    facts.reached.clear()
                facts.reached[question] = path
            listed = "listing: held on some instance; "
        else:
            return None
        if path is None:
            return None
        return Decision(
            allowed=True,
            reason=(
                f"resource role {path[-1].role!r} on {type_name}:{path[-1].key} grants "
                f"{action} ({listed}derived: {describe(path)})"
            ),
        )

    def _unknown_target(self, type_name: str, action: str) -> Decision:
        actions = self._resource_actions.get(type_name)
        if actions is None:
            reason = f"unknown resource type {type_name!r}: nothing grants {type_name}:{action}"
        else:
            reason = f"resource type {type_name!r} has no action {action!r}"
        return Decision(allowed=False, reason=reason)


def _assigned_role(
    facts: Facts, request: AuthzRequest, wanted: frozenset[str], listing: bool
) -> Decision | None:
    """An allow from a resource role assigned on the instance, or ``None``."""
    resource = request.resource
    type_name, action, user_key = resource.type, request.action, request.user.key
    if resource.key is not None:
        for role in facts.instance_roles.get((user_key, type_name, resource.key), ()):
            if role in wanted:
                return Decision(
                    allowed=True,
                    reason=f"resource role {role!r} on {type_name}:{resource.key} grants {action}",
                )
        return None
    if not listing:
        return None
    # The listing rule for ReBAC: the instance comes from the call's arguments,
    # so a list shows the component to a caller holding a granting resource
    # role on some instance of the type.
    for role, key in facts.roles_on_type.get((user_key, type_name), {}).items():
        if role in wanted:
            return Decision(
                allowed=True,
                reason=(
                    f"resource role {role!r} on {type_name}:{key} grants {action} "
                    "(listing: held on some instance)"
                ),
            )
    return None


def _how(listing: bool) -> str:
    return "(listing: condition not excluded)" if listing else "(condition met)"
