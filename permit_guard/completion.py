"""``completion/complete``: argument suggestions only for what the caller may see.

A completion names a prompt or a resource template and reveals its arguments
(and, through the server's handler, values). The guard answers it only for a
reference the caller's own list would show (:meth:`Guard.decide_reference
<permit_guard.guard.Guard.decide_reference>`); any other reference — hidden,
denied or unknown alike — is answered as FastMCP answers one that names
nothing: empty values, the completion handler never seeing the hidden name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastmcp.server.middleware import CallNext, MiddlewareContext

from permit_guard.caller import Identify
from permit_guard.components.lookup import completion_target, server_of
from permit_guard.enforcement import Enforcement
from permit_guard.exceptions import AccessDenied, on_wire

__all__ = ["complete"]

#: A completion reference that names no component, for answering hidden ones alike.
_NOWHERE: Mapping[str, Mapping[str, str]] = {
    "ref/prompt": {"name": "\x00permit-guard: no such prompt"},
    "ref/resource": {"uri": "\x00permit-guard: no such template"},
}


async def complete(
    enforcement: Enforcement,
    context: MiddlewareContext[Any],
    call_next: CallNext[Any, Any],
    identify: Identify,
) -> Any:
    """Serve one ``completion/complete`` request, decided by the guard ``enforcement`` applies.

    Raises:
        MCPError: "Method ... is not allowed" when the method is not known.
    """
    message = context.message
    ref = message.get("ref") if isinstance(message, Mapping) else None
    found = await completion_target(server_of(context), ref)
    if found is None or not isinstance(message, Mapping) or not isinstance(ref, Mapping):
        # Malformed: FastMCP refuses it, revealing nothing.
        return await call_next(context)
    method = context.method or ""
    verdict = await enforcement.guard.decide_reference(method, found, identify=identify)
    if not enforcement.refuses(verdict, method, found.name):
        return await call_next(context)
    if verdict.why == "method":
        raise on_wire(AccessDenied(f"Method {method!r} is not allowed", component=method))
    nowhere = {**message, "ref": {**ref, **_NOWHERE[str(ref["type"])]}}
    return _without_values(await call_next(context.copy(message=nowhere)))


def _without_values(result: Any) -> Any:
    """A completion result with its values dropped, in the envelope the server built."""
    if isinstance(result, Mapping):
        return {**result, "completion": {"values": []}}
    completion = getattr(result, "completion", None)
    if completion is not None:
        return result.model_copy(update={"completion": type(completion)(values=[])})
    return result
