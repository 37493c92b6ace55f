"""Tools whose names map to one action: a grant meant for one would open them all.

The mapping turns ``_``, ``.`` and ``/`` into ``-``, so ``refund_all``,
``refund.all``, ``refund/all`` and ``refund-all`` all become the action
``refund-all`` on the same resource type. Two such tools with different
functions are ambiguous: the guard refuses both (one log line naming them all)
until each has its own explicit ``action=``; ``permit-guard lint`` reports them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastmcp.tools.base import Tool

from permit_guard.components.resolve import resolve
from permit_guard.mapping import MappingConfig, normalize_action

__all__ = ["ambiguous_tools"]

logger = logging.getLogger("permit_guard")


async def ambiguous_tools(tools: Sequence[Tool], mapping: MappingConfig) -> Mapping[str, str]:
    """Tool name -> why it is refused, for every tool whose name-derived action another shares.

    Public tools (never checked) and tools with an explicit ``action=`` take
    part in no ambiguity. A tool whose spec cannot be found is refused anyway.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for tool in tools:
        try:
            resolved = await resolve(tool)
        except Exception:
            continue
        spec = resolved.spec
        if spec is not None and (spec.is_public or spec.action is not None):
            continue
        resource_type = spec.resource if spec is not None and spec.resource else mapping.server_name
        function = spec.function if spec is not None and spec.function else None
        identity = function or getattr(tool, "fn", None) or tool.key
        groups.setdefault((resource_type, normalize_action(tool.name)), {})[tool.name] = identity
    refused: dict[str, str] = {}
    for (resource_type, action), members in groups.items():
        if len(members) < 2 or len(set(members.values())) < 2:
            continue
        names = ", ".join(repr(name) for name in sorted(members))
        reason = (
            f"tools {names} all map to {resource_type}:{action}, so a grant for one would "
            "open them all: refused until each has its own action= "
            "(@require_permission(action=...))"
        )
        logger.error("ambiguous actions: %s", reason)
        refused.update(dict.fromkeys(members, reason))
    return refused
