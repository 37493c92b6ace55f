"""The value objects of one authorization question and its answer.

They mirror the JSON the Permit.io PDP takes on ``POST /allowed``, so every
engine — embedded or remote — is asked exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from permit_guard.explanation import Explanation

__all__ = ["AuthzRequest", "Decision", "Principal", "Resource"]

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
