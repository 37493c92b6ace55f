"""The MCP method vocabulary, and the rules that say which methods are checked.

One home for the names: which methods call, read or render a component, which
ones list components, which ones are the protocol handshake, and how the
``known_methods``, ``unknown_methods`` and ``bypassed_methods`` settings apply
to a method. Everything that decides about a method (the guard core, the
embedded engine's listing rule, the CLI) reads it here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from permit_guard.exceptions import ConfigurationError

if TYPE_CHECKING:
    from permit_guard.settings import GuardSettings

__all__ = [
    "BUILT_IN_ATTRIBUTES",
    "CALL_METHODS",
    "COMPONENT_METHODS",
    "HANDSHAKE_METHODS",
    "KIND_LIST_METHODS",
    "LIST_METHODS",
    "LIST_METHOD_KINDS",
    "REFERENCE_METHODS",
    "TASK_METHODS",
    "TYPED_METHODS",
    "Kind",
    "MethodRules",
    "compile_patterns",
]

#: What a component is: a tool, a static resource, a resource template or a prompt.
Kind = Literal["tool", "resource", "template", "prompt"]

#: Resource attributes the guard sets on every component request. Nothing else
#: may set them (an attribute loader, a resource instance's facts): the engine
#: reads ``mcp_method`` to tell a list check from a call.
BUILT_IN_ATTRIBUTES: Final = frozenset({"mcp_method", "tool_name", "prompt_name", "resource_uri"})

#: List methods and the component family whose gate they check.
LIST_METHODS: Final[Mapping[str, str]] = {
    "tools/list": "tools",
    "resources/list": "resources",
    "resources/templates/list": "resources",
    "prompts/list": "prompts",
}

#: The list method of each kind of component, and back.
KIND_LIST_METHODS: Final[Mapping[Kind, str]] = {
    "tool": "tools/list",
    "resource": "resources/list",
    "template": "resources/templates/list",
    "prompt": "prompts/list",
}
LIST_METHOD_KINDS: Final[Mapping[str, Kind]] = {
    method: kind for kind, method in KIND_LIST_METHODS.items()
}

#: The method a call, a read or a render of each kind of component goes through.
CALL_METHODS: Final[Mapping[Kind, str]] = {
    "tool": "tools/call",
    "resource": "resources/read",
    "template": "resources/read",
    "prompt": "prompts/get",
}

#: Methods that carry a component: always checked, whatever the bypass list says.
COMPONENT_METHODS: Final = frozenset(CALL_METHODS.values())
#: Methods about a component that do not use it: answered only for a caller the
#: component's list would show it to (``completion/complete`` reveals a prompt's
#: or template's arguments).
REFERENCE_METHODS: Final = frozenset({"completion/complete"})
#: Requests that name a background task by id (fastmcp-tasks, SEP-2663): answered
#: by :class:`~permit_guard.tasks.GuardedTasks` for the task's owner only.
TASK_METHODS: Final = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
#: Methods FastMCP hands to a typed middleware hook (calls and lists).
TYPED_METHODS: Final = COMPONENT_METHODS | frozenset(LIST_METHODS)
#: The protocol handshake: a client that cannot complete it cannot even reach
#: ``@public`` components, so it is let through whatever the bypass list says.
HANDSHAKE_METHODS: Final = frozenset({"initialize", "server/discover"})


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for method patterns where ``*`` matches within one ``/`` segment."""
    parts = ["[^/]*".join(re.escape(chunk) for chunk in p.split("*")) for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{part})" for part in parts))


@dataclass(frozen=True, kw_only=True, slots=True)
class MethodRules:
    """Which methods are checked, let through, or refused before any component is looked at.

    Attributes:
        known: Methods the guard handles (``known_methods``).
        allow_unknown: Whether a method outside ``known`` is let through
            (``unknown_methods="allow"``) rather than refused.
        bypass: The compiled ``bypassed_methods`` patterns, ``None`` for none.
    """

    known: frozenset[str]
    allow_unknown: bool = False
    bypass: re.Pattern[str] | None = None

    @classmethod
    def build(
        cls, *, known: Iterable[str], unknown: str = "deny", bypassed: Iterable[str] = ()
    ) -> MethodRules:
        """Rules from the three settings.

        Raises:
            ConfigurationError: If a bypass pattern matches a call, read or
                render method: those are always checked.
        """
        patterns = list(bypassed)
        for pattern in patterns:
            compiled = compile_patterns([pattern])
            hits = sorted(m for m in COMPONENT_METHODS if compiled and compiled.fullmatch(m))
            if hits:
                raise ConfigurationError(
                    f"bypassed_methods: {pattern!r} matches {', '.join(hits)}; calls, reads "
                    "and prompt renders are always checked and cannot be bypassed"
                )
        return cls(
            known=frozenset(known),
            allow_unknown=unknown == "allow",
            bypass=compile_patterns(patterns),
        )

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> MethodRules:
        """Rules from ``known_methods``, ``unknown_methods`` and ``bypassed_methods``."""
        return cls.build(
            known=settings.known_methods,
            unknown=settings.unknown_methods,
            bypassed=settings.bypassed_methods,
        )

    def bypassed(self, method: str) -> bool:
        """Whether the method-level check of ``method`` is skipped."""
        return self.bypass is not None and self.bypass.fullmatch(method) is not None

    def handled(self, method: str) -> bool:
        """Whether ``method`` may be served at all: known, or unknown and allowed."""
        return method in self.known or self.allow_unknown

    def refusal(self, method: str) -> str | None:
        """Why ``method`` is refused outright, or ``None`` when it may be served."""
        if method in self.known or self.allow_unknown:  # handled(), inlined: every call asks
            return None
        return f"{method} is not in known_methods"
