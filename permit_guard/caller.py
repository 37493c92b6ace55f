"""Who is calling: the caller of one request (found fail-closed), and of the running component.

The middleware finds the caller with its identity extractor (or the
permit-fastmcp subclass hook) only when the guard needs one, and runs an
allowed component with that caller as :func:`current_principal`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

from fastmcp.server.middleware import MiddlewareContext

from permit_guard.identity import IdentityExtractor
from permit_guard.model import Principal

__all__ = [
    "Identify",
    "PrincipalHook",
    "acting_as",
    "current_principal",
    "from_hook",
    "identify",
    "known",
]

#: Finds the caller when the guard needs one; ``None`` means no valid credentials.
Identify = Callable[[], Awaitable[Principal | None]]


async def known(principal: Principal | None) -> Principal | None:
    """An :data:`Identify` result for a caller already known (the CLI's ``--user``)."""
    return principal


logger = logging.getLogger("permit_guard")

#: permit-fastmcp's subclass hook: ``(user_key, attributes)``, sync or async.
PrincipalHook = Callable[
    [MiddlewareContext[Any]],
    tuple[str | None, dict[str, Any]] | Awaitable[tuple[str | None, dict[str, Any]]],
]

_current_principal: ContextVar[Principal | None] = ContextVar(
    "permit_guard_principal", default=None
)


def current_principal() -> Principal | None:
    """The caller the guard allowed the running tool, resource read or prompt for.

    ``None`` outside a guarded call, and in ``@public`` components (which are
    never checked, so nobody was identified). Use it to act on behalf of the
    verified user without verifying the token again::

        @mcp.tool
        @require_permission()
        def whoami() -> str:
            principal = current_principal()
            return principal.key if principal else "anonymous"
    """
    return _current_principal.get()


class acting_as:
    """Run the block with ``principal`` as :func:`current_principal`.

    A class rather than ``@contextmanager``: it runs on every guarded call,
    and a generator-based context manager costs several times as much.
    """

    __slots__ = ("_principal", "_token")

    _token: Token[Principal | None]

    def __init__(self, principal: Principal | None) -> None:
        self._principal = principal

    def __enter__(self) -> None:
        self._token = _current_principal.set(self._principal)

    def __exit__(self, *exc_info: object) -> None:
        _current_principal.reset(self._token)


async def identify(
    extractor: IdentityExtractor, context: MiddlewareContext[Any]
) -> Principal | None:
    """The caller, or ``None`` without valid credentials (an extractor error included)."""
    try:
        principal = extractor(context)
        if type(principal) is not Principal and inspect.isawaitable(principal):
            principal = await principal
    except Exception as exc:
        # Fail closed: an extractor that breaks authenticates nobody.
        logger.error("identity extractor %r failed: %s", extractor, exc)
        return None
    if principal is not None and not isinstance(principal, Principal):
        logger.error(
            "identity extractor %r returned %r, not a Principal",
            extractor,
            type(principal).__name__,
        )
        return None
    return principal


def from_hook(hook: PrincipalHook) -> IdentityExtractor:
    """An extractor that calls permit-fastmcp's ``_extract_principal_info`` hook.

    A ``None`` user key means no valid credentials; anything but
    ``(non-empty str | None, attributes)`` is an extractor failure (denied).
    """

    async def extract(context: MiddlewareContext[Any]) -> Principal | None:
        info = hook(context)
        if inspect.isawaitable(info):
            info = await info
        if not isinstance(info, tuple) or len(info) != 2:
            raise TypeError(
                f"_extract_principal_info returned {info!r}, not (user_key, attributes)"
            )
        key, attributes = info
        if key is None:
            return None
        if not isinstance(key, str) or not key:
            raise TypeError(f"_extract_principal_info returned user key {key!r}")
        return Principal(key=key, attributes=dict(attributes or {}))

    return extract
