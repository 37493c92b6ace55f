"""The value objects of one authorization question and its answer.

They mirror the JSON the Permit.io PDP takes on ``POST /allowed``, so every
engine — embedded or remote — is asked exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from permit_guard.exceptions import MalformedRequest
from permit_guard.explanation import Explanation

__all__ = ["AuthzRequest", "Decision", "MalformedRequest", "Principal", "Resource"]

DEFAULT_TENANT = "default"


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """Who is asking.

    Attributes:
        key: The user key, as Permit.io knows the user.
        attributes: User attributes for user-set (ABAC) rules.
        tenant: The caller's tenant, used when the component does not name one.
    """

    key: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tenant: str | None = None

    def same_as(self, other: Principal) -> bool:
        """Equal, and of the same types throughout: ``1``, ``1.0`` and ``True`` differ.

        What the guard keeps for one caller is reused for another only when
        this holds: a PDP's policy may tell those values apart.
        """
        return self is other or (
            self.key == other.key
            and self.tenant == other.tenant
            and _same_value(self.attributes, other.attributes, 0)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Resource:
    """What is being acted on.

    Attributes:
        type: The resource type (``mcp_server``, ``invoice``...).
        key: The resource instance key, if the request names one.
        tenant: The tenant the resource lives in.
        attributes: Resource attributes (``arg_*``, ``tool_name``...).
    """

    type: str
    key: str | None = None
    tenant: str = DEFAULT_TENANT
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthzRequest:
    """One question for a policy engine: may ``user`` do ``action`` on ``resource``?"""

    user: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_pdp_json(self) -> dict[str, Any]:
        """The request as the Permit.io PDP takes it on ``POST /allowed``."""
        resource: dict[str, Any] = {
            "type": self.resource.type,
            "tenant": self.resource.tenant,
            "attributes": dict(self.resource.attributes),
            "context": {},
        }
        if self.resource.key is not None:
            resource["key"] = self.resource.key
        return {
            "user": {"key": self.user.key, "attributes": dict(self.user.attributes)},
            "action": self.action,
            "resource": resource,
            "context": dict(self.context),
        }

    @classmethod
    def from_pdp_json(cls, data: object) -> AuthzRequest:
        """The request back from its :meth:`to_pdp_json` form (e.g. a recorded audit event's).

        Example::

            request = AuthzRequest.from_pdp_json(event["request"])
            decision = await engine.check(request)

        Args:
            data: ``{"user": {"key", "attributes"}, "action", "resource": {"type",
                "key", "tenant", "attributes", "context"}, "context"}``; ``key``,
                ``tenant`` (default ``default``) and the attribute and context
                objects may be left out.

        Returns:
            The request, equal to the one that was written.

        Raises:
            MalformedRequest: Naming the first field that is missing, of the
                wrong type, or not part of the form.
        """
        body = _object(data, "request", ("user", "action", "resource"), ("context",))
        user = _object(body["user"], "request.user", ("key",), ("attributes",))
        resource = _object(
            body["resource"],
            "request.resource",
            ("type",),
            ("key", "tenant", "attributes", "context"),
        )
        if _mapping(resource.get("context"), "request.resource.context"):
            # to_pdp_json always sends an empty one: anything else was not asked by the guard.
            raise MalformedRequest("request.resource.context must be empty")
        key = resource.get("key")
        if key is not None and not isinstance(key, str):
            raise MalformedRequest(f"request.resource.key must be a string, not {_kind(key)}")
        return cls(
            user=Principal(
                key=_text(user["key"], "request.user.key"),
                attributes=_mapping(user.get("attributes"), "request.user.attributes"),
            ),
            action=_text(body["action"], "request.action"),
            resource=Resource(
                type=_text(resource["type"], "request.resource.type"),
                key=key,
                tenant=_text(resource.get("tenant", DEFAULT_TENANT), "request.resource.tenant"),
                attributes=_mapping(resource.get("attributes"), "request.resource.attributes"),
            ),
            context=_mapping(body.get("context"), "request.context"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """An engine's answer.

    Attributes:
        allowed: Whether the request may proceed.
        reason: Why, in words: which role, user set or resource role granted
            it, or that none did.
        cached: Whether it came from a decision cache rather than the engine.
        explanation: How the engine reached it, when asked to explain (the
            embedded engine's ``explain``); ``None`` otherwise.
    """

    allowed: bool
    reason: str
    cached: bool = False
    explanation: Explanation | None = None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(
    value: object, where: str, required: Iterable[str], optional: Iterable[str]
) -> Mapping[str, Any]:
    """A JSON object with these keys: every ``required`` one, and no others but ``optional``."""
    if not isinstance(value, Mapping):
        raise MalformedRequest(f"{where} must be an object, not {_kind(value)}")
    required = tuple(required)
    missing = [name for name in required if name not in value]
    if missing:
        raise MalformedRequest(f"{where} has no {', '.join(missing)}")
    unknown = sorted(str(name) for name in set(value) - {*required, *optional})
    if unknown:
        raise MalformedRequest(f"{where} has unknown field(s) {', '.join(unknown)}")
    return value


def _mapping(value: object, where: str) -> dict[str, Any]:
    """An object of attributes (absent or ``null``: none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise MalformedRequest(f"{where} must be an object, not {_kind(value)}")
    return dict(value)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedRequest(f"{where} must be a non-empty string, not {value!r}")
    return value


def _same_value(left: Any, right: Any, depth: int) -> bool:
    """``left == right`` with the same type at every level (bounded in depth)."""
    if type(left) is not type(right):
        return False
    if depth > 32:
        return False  # too deep to tell: not the same, so nothing is reused
    if isinstance(left, Mapping):
        return left.keys() == right.keys() and all(
            _same_value(value, right[key], depth + 1) for key, value in left.items()
        )
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(
            _same_value(a, b, depth + 1) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)
