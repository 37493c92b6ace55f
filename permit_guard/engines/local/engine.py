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
from permit_guard.engines.local.indexes import DecisionIndex, Grants, ResourceSet
from permit_guard.engines.local.loading import LoadedPolicy, load_policy, read_policy_file
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

    __slots__ = (
        "_grants",
        "_instance_roles",
        "_instances",
        "_resource_actions",
        "_roles_on_type",
        "_source",
        "_user_attributes",
        "_user_roles",
    )

    def __init__(self, loaded: LoadedPolicy) -> None:
        """Build the decision indexes of a checked policy.

        Args:
            loaded: A policy from :func:`~permit_guard.engines.local.loading.load_policy`
                or :func:`~permit_guard.engines.local.loading.read_policy_file`.
        """
        index = DecisionIndex.build(loaded)
        self._source = loaded.source
        self._resource_actions: Mapping[str, frozenset[str]] = index.resource_actions
        self._grants: Mapping[tuple[str, str], Grants] = index.grants
        self._user_roles: Mapping[tuple[str, str], tuple[str, ...]] = index.user_roles
        self._instance_roles: Mapping[tuple[str, str, str], tuple[str, ...]] = index.instance_roles
        # (user, type) -> {resource role: one instance holding it}, for the listing rule.
        self._roles_on_type: Mapping[tuple[str, str], Mapping[str, str]] = index.roles_on_type
        self._user_attributes: Mapping[str, Mapping[str, Any]] = index.user_attributes
        self._instances = index.instances

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Load a policy file (``.yaml``, ``.yml`` or ``.json``), read once.

        Args:
            path: The policy file.

        Returns:
            The engine.

        Raises:
            PolicyFileError: Naming the file and every problem found in it.
        """
        return cls(read_policy_file(path))

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
        return self._source

    def __repr__(self) -> str:
        return f"LocalPolicyEngine(source={self._source!r})"

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
        if self._instances and request.resource.key is not None:
            request = self._in_instance(request)
        resource = request.resource
        type_name = resource.type
        action = request.action
        user_key = request.user.key
        tenant = resource.tenant
        grants = self._grants.get((type_name, action))
        if grants is None:
            return self._unknown_target(type_name, action)

        roles = self._user_roles.get((tenant, user_key), ())
        for role in roles:
            if role in grants.roles:
                return Decision(
                    allowed=True,
                    reason=f"role {role!r} grants {type_name}:{action} in tenant {tenant!r}",
                )

        if grants.resource_roles and resource.key is not None:
            for role in self._instance_roles.get((user_key, type_name, resource.key), ()):
                if role in grants.resource_roles:
                    return Decision(
                        allowed=True,
                        reason=(
                            f"resource role {role!r} on {type_name}:{resource.key} grants {action}"
                        ),
                    )

        if grants.resource_roles and resource.key is None and is_listing(request):
            # The listing rule for ReBAC: the instance comes from the call's
            # arguments, so a list shows the component to a caller holding a
            # granting resource role on some instance of the type.
            held = self._roles_on_type.get((user_key, type_name), {})
            for role, key in held.items():
                if role in grants.resource_roles:
                    return Decision(
                        allowed=True,
                        reason=(
                            f"resource role {role!r} on {type_name}:{key} grants {action} "
                            "(listing: held on some instance)"
                        ),
                    )

        subject: Subject | None = None
        listing = False
        if roles and grants.roles_via_sets:
            for role in roles:
                for resource_set in grants.roles_via_sets.get(role, ()):
                    if subject is None:
                        subject = self._subject(request)
                        listing = is_listing(request)
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
                subject = self._subject(request)
                listing = is_listing(request)
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

        if user_key not in self._user_attributes:
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

    def _in_instance(self, request: AuthzRequest) -> AuthzRequest:
        """The request as the server's facts about its instance say it is.

        A known instance is decided in its own tenant, whatever tenant the
        request names (so roles in another tenant grant nothing on it), and its
        attributes win over any the client sent under the same name.
        """
        resource = request.resource
        known = self._instances.get((resource.type, resource.key or ""))
        if known is None:
            return request
        tenant, attributes = known
        facts = {**resource.attributes, **attributes} if attributes else resource.attributes
        return replace(request, resource=replace(resource, tenant=tenant, attributes=facts))

    def _subject(self, request: AuthzRequest) -> Subject:
        # The file's attributes for the user, overridden by the request's own.
        known = self._user_attributes.get(request.user.key)
        given = request.user.attributes
        if not known:
            attributes = given
        elif not given:
            attributes = known
        else:
            attributes = {**known, **given}
        return Subject(
            user_key=request.user.key, user_attributes=attributes, resource=request.resource
        )

    def _unknown_target(self, type_name: str, action: str) -> Decision:
        actions = self._resource_actions.get(type_name)
        if actions is None:
            reason = f"unknown resource type {type_name!r}: nothing grants {type_name}:{action}"
        else:
            reason = f"resource type {type_name!r} has no action {action!r}"
        return Decision(allowed=False, reason=reason)


def _how(listing: bool) -> str:
    return "(listing: condition not excluded)" if listing else "(condition met)"
