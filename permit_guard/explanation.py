"""Why a decision came out as it did, as data: what was considered, with the values seen.

An engine that can explain itself (the embedded one) attaches an
:class:`Explanation` to the :class:`~permit_guard.model.Decision` it returns
from ``explain()``: the caller's roles per tenant, each role, resource set,
user set and resource role considered in the order the engine tried them, and
every condition evaluated with the actual values, ending in the one that
decided. The one-line ``reason`` of a decision, the audit event's, stays as it
is; the explanation is for people (``permit-guard explain``, ``check -v``) and
tools (``--json``, the matrix).

Example of :meth:`Explanation.lines`::

    bob in tenant 'default' asks mcp_server:refund
      roles in 'default': clerk
      - role 'clerk' does not grant mcp_server:refund
      - user set 'finance' grants refund on resource set 'small_refunds': no
          user.department = "finance" equals "finance" -> true
          resource set 'small_refunds' -> false
            allOf -> false
              resource.arg_amount = 500 less-than-equals 100 -> false
              resource.arg_currency = "EUR" equals "EUR" -> true
      = denied: no role, user set or resource role of user 'bob' ... grants mcp_server:refund
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "ConditionTrace",
    "Considered",
    "Explanation",
    "GrantKind",
    "Truth",
    "show_value",
    "truth_word",
]

#: ``True``, ``False``, or ``None``: unknown (it depends on arguments a list does not have).
Truth: TypeAlias = bool | None

#: What kind of grant a :class:`Considered` is.
GrantKind: TypeAlias = Literal["role", "role-on-set", "user-set", "resource-role", "derived"]

_LONGEST_VALUE: Final = 60


def show_value(value: object) -> str:
    """A value as an explanation shows it: JSON where it can, cut to 60 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def truth_word(value: Truth) -> str:
    """``true``, ``false`` or ``unknown``."""
    return "unknown" if value is None else "true" if value else "false"


def _unknown_inside(trace: ConditionTrace) -> bool:
    return trace.value is None or any(_unknown_inside(c) for c in trace.children)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConditionTrace:
    """One node of a condition, as it evaluated on one request.

    Attributes:
        text: The node: ``allOf``, ``anyOf``, ``not``, or a comparison with the
            value seen, e.g. ``resource.arg_amount = 500 less-than-equals 100``.
        value: What it evaluated to (``None``: unknown, for a list).
        children: The nodes under a logical one.
    """

    text: str
    value: Truth
    children: tuple[ConditionTrace, ...] = ()

    def lines(self, indent: str = "") -> list[str]:
        """The node and its children, one per line."""
        found = [f"{indent}{self.text} -> {truth_word(self.value)}"]
        for child in self.children:
            found.extend(child.lines(indent + "  "))
        return found

    def to_json(self) -> dict[str, Any]:
        """The node as plain JSON data."""
        data: dict[str, Any] = {"text": self.text, "value": self.value}
        if self.children:
            data["children"] = [child.to_json() for child in self.children]
        return data


@dataclass(frozen=True, kw_only=True, slots=True)
class Considered:
    """One way the action could have been granted, and whether it was.

    Attributes:
        kind: ``role`` (a role on the resource type), ``role-on-set`` (a role on
            a resource set), ``user-set``, ``resource-role`` (assigned on the
            instance) or ``derived`` (a resource role derived along relations).
        name: The role or user set.
        granted: Whether it granted; ``None`` when a list shows the component
            because it may grant, depending on the call's arguments.
        detail: The grant in words.
        conditions: The conditions it depends on (a user set's, a resource
            set's), as evaluated; a resource set's trace is titled with its name.
    """

    kind: GrantKind
    name: str
    granted: Truth
    detail: str
    conditions: tuple[ConditionTrace, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The grant as plain JSON data."""
        return {
            "kind": self.kind,
            "name": self.name,
            "granted": self.granted,
            "detail": self.detail,
            "conditions": [c.to_json() for c in self.conditions],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    """How an engine reached one decision.

    Attributes:
        user: The user key asked about.
        tenant: The tenant the request was decided in.
        target: ``resource type:action`` (with ``:key`` when an instance is named).
        roles: The caller's roles in every tenant they have any.
        listing: Whether it answered for a list (the listing rule applies).
        considered: What was tried, in order; the last one granted when the
            request was allowed.
        allowed: The outcome.
        reason: The decision's one-line reason.
    """

    user: str
    tenant: str
    target: str
    roles: Mapping[str, tuple[str, ...]]
    listing: bool
    considered: tuple[Considered, ...]
    allowed: bool
    reason: str

    @property
    def decided_by(self) -> Considered | None:
        """The grant that allowed the request (``None`` for a denial)."""
        if self.allowed and self.considered and self.considered[-1].granted is not False:
            return self.considered[-1]
        return None

    @property
    def depends_on_arguments(self) -> bool:
        """Whether an allow for a list may hold for some arguments only.

        True when the deciding grant holds on some instance only (a resource
        role, for a keyed component), or when a condition it depends on left
        a comparison unknown, even one that did not decide: a list decision
        sees ``mcp_method`` as the list's, while a call sends its own (a
        branch ``resource.mcp_method equals tools/list`` lists a component
        whose calls still depend on their arguments).
        """
        decided = self.decided_by
        if decided is None:
            return False
        return decided.granted is None or any(_unknown_inside(c) for c in decided.conditions)

    def lines(self) -> list[str]:
        """The explanation as an indented tree, one line per step."""
        asks = "lists" if self.listing else "asks"
        found = [f"{self.user} in tenant {self.tenant!r} {asks} {self.target}"]
        if self.roles:
            for tenant, names in self.roles.items():
                found.append(f"  roles in {tenant!r}: {', '.join(names)}")
        else:
            found.append("  roles: none in any tenant")
        for step in self.considered:
            outcome = {True: "yes", False: "no", None: "for some arguments"}[step.granted]
            found.append(f"  - {step.detail}: {outcome}")
            for trace in step.conditions:
                found.extend(trace.lines("      "))
        found.append(f"  = {'allowed' if self.allowed else 'denied'}: {self.reason}")
        return found

    def to_json(self) -> dict[str, Any]:
        """The explanation as plain JSON data."""
        return {
            "user": self.user,
            "tenant": self.tenant,
            "target": self.target,
            "roles": {tenant: list(names) for tenant, names in self.roles.items()},
            "listing": self.listing,
            "considered": [step.to_json() for step in self.considered],
            "allowed": self.allowed,
            "depends_on_arguments": self.depends_on_arguments,
            "reason": self.reason,
        }
