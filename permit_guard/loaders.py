"""Attribute loaders: resource attributes from the server's own data, once per request.

A policy can only judge what the request carries, and the client chooses the
arguments. ``@require_permission(..., attributes=load)`` names a loader that
looks the facts up instead (the issue's stored priority, the document's
owner)::

    async def stored_issue(issue_id: int) -> dict[str, object]:
        issue = await db.issues.get(issue_id)
        return {"priority": issue.priority, "owner": issue.owner}

    @mcp.tool
    @require_permission("close", resource="issue", key="issue_id", attributes=stored_issue)
    def close_issue(issue_id: int) -> str: ...

The guard calls it after the engine request is built, with the arguments it
names as the engine sees them (validated against the function's annotations,
defaults filled in), and sends what it returns as resource attributes under
their own names (no ``arg_`` prefix), winning over argument attributes. Only
calls, reads and renders run loaders; lists never do (they are decided by the
listing rule, without the loaded attributes).

A loader that raises, does not answer within the timeout, or returns anything
but a mapping of JSON values denies the request: fail closed, logged.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread

from permit_guard.attributes import MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES
from permit_guard.methods import BUILT_IN_ATTRIBUTES

if TYPE_CHECKING:
    from permit_guard.components.lookup import Target
    from permit_guard.model import AuthzRequest
    from permit_guard.spec import Loader
    from permit_guard.verdict import Plan

__all__ = ["MAX_LOADED_DEPTH", "MAX_LOADER_THREADS", "LoaderBusy", "load", "loads"]

logger = logging.getLogger("permit_guard")

#: Loaded values nest at most this deep (a cycle is refused at this depth).
MAX_LOADED_DEPTH: Final = 16


def loads(plan: Plan) -> bool:
    """Whether the planned component has a loader (:func:`load` then has work to do)."""
    resolved = plan.resolved
    return resolved is not None and resolved.spec is not None and resolved.spec.loader is not None


async def load(
    plan: Plan, target: Target, request: AuthzRequest, limit: float
) -> tuple[AuthzRequest, str | None]:
    """``request`` with the attributes the component's loader returns, or why it failed.

    Without a loader, ``request`` as it is.

    Args:
        plan: The component's plan (its spec and argument binder).
        target: The component and the arguments sent.
        request: The engine request built from the arguments.
        limit: Seconds the loader may take.

    Returns:
        The request to ask, and ``None``; or the request unchanged and the
        failure, for the audit reason (the request must then be denied).

    Raises:
        InvalidArguments: When an argument the loader takes cannot be read as
            the function would read it.
    """
    resolved = plan.resolved
    if resolved is None or resolved.spec is None or resolved.spec.loader is None:
        return request, None
    loader = resolved.spec.loader
    unsent = next((n for n in loader.arguments if n not in resolved.binder.declared), None)
    if unsent is not None:
        return _failed(request, loader, target, f"takes {unsent!r}, which clients do not send")
    values = resolved.binder.bind(target.arguments or {}, loader.arguments, target.name)
    result: object = None
    try:
        with anyio.move_on_after(limit) as scope:
            result = await _call(loader, values)
    except (KeyboardInterrupt, SystemExit):
        raise
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the request itself is cancelled, not the loader failing
        return _failed(request, loader, target, "raised CancelledError", exc)
    except BaseException as exc:
        # Anything a loader raises is its failure, never the server's: deny.
        return _failed(request, loader, target, f"raised {type(exc).__name__}: {exc}", exc)
    if scope.cancelled_caught:
        return _failed(request, loader, target, f"did not answer within {limit:g}s")
    try:
        loaded = _attributes(result)
    except ValueError as exc:
        return _failed(request, loader, target, f"returned {exc}")
    except Exception as exc:  # a mapping whose own methods raise
        return _failed(request, loader, target, f"returned a mapping that raised {exc!r}", exc)
    attributes = {**request.resource.attributes, **loaded}
    return replace(request, resource=replace(request.resource, attributes=attributes)), None


class _Threads:
    """How many sync loaders are running in worker threads, timed-out ones included.

    A thread left behind by a timeout runs until its loader returns; without
    a bound, a loader that hangs would cost one more thread per call. Counted
    inside the thread itself, so a call abandoned before its thread started
    counts nothing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., object], values: dict[str, Any]) -> object:
        with self._lock:
            self.running += 1
        try:
            return fn(**values)
        finally:
            with self._lock:
                self.running -= 1


#: The sync loaders that may run at once; beyond it, calls are denied at once.
MAX_LOADER_THREADS: Final = 32

_threads = _Threads(MAX_LOADER_THREADS)


class LoaderBusy(Exception):
    """Too many sync loaders still running: the call is denied without starting another."""


async def _call(loader: Loader, values: dict[str, Any]) -> object:
    result: object
    if loader.is_async:
        result = loader.fn(**values)
    else:
        if _threads.running >= _threads.limit:
            raise LoaderBusy(
                f"{_threads.running} sync loaders are still running (at most {_threads.limit})"
            )
        # A sync loader may block (a database call): a worker thread keeps the
        # event loop serving, and is left to finish alone once the timeout passes.
        result = await anyio.to_thread.run_sync(
            partial(_threads.run, loader.fn, values), abandon_on_cancel=True
        )
    if inspect.isawaitable(result):  # a sync callable handing back a coroutine
        result = await result
    return result


def _failed(
    request: AuthzRequest,
    loader: Loader,
    target: Target,
    cause: str,
    exc: BaseException | None = None,
) -> tuple[AuthzRequest, str]:
    # Fail closed: the cause goes to the log and the audit event, never to the client.
    logger.error(
        "attribute loader %s of %s %r failed; denying: %s",
        loader.name,
        target.kind,
        target.name,
        cause,
        exc_info=exc,
    )
    return request, f"attribute loader {loader.name} {cause}"


def _attributes(result: object) -> dict[str, Any]:
    """The loader's result as plain JSON attributes.

    Raises:
        ValueError: Saying what is wrong with it.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"{type(result).__name__}, not a mapping of attributes")
    if len(result) > MAX_ATTRIBUTES:
        raise ValueError(f"{len(result)} attributes, over {MAX_ATTRIBUTES}")
    attributes: dict[str, Any] = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"the attribute name {name!r}, not a non-empty string")
        # The plain text, before any check: a str subclass may hash and compare as it likes.
        plain_name = str.__str__(name)
        if plain_name in BUILT_IN_ATTRIBUTES:
            raise ValueError(f"the built-in attribute {plain_name!r}, which the guard sets")
        attributes[plain_name] = _plain(value, repr(plain_name), 1)
    size = len(json.dumps(attributes).encode())
    if size > MAX_ATTRIBUTE_BYTES:
        raise ValueError(f"{size} bytes of attributes, over {MAX_ATTRIBUTE_BYTES}")
    return attributes


def _plain(value: object, where: str, depth: int) -> Any:
    """``value`` as plain JSON (dict, list, str, int, float, bool, None).

    Raises:
        ValueError: On a value JSON cannot carry or a policy cannot compare.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            # NaN compares false with everything, so `not` would turn it into an allow.
            raise ValueError(f"{value!r} at {where}, which no policy can compare")
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if depth >= MAX_LOADED_DEPTH:
        raise ValueError(f"values nested deeper than {MAX_LOADED_DEPTH} at {where}")
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"the key {key!r} at {where}, not a string")
            plain[str.__str__(key)] = _plain(item, f"{where}[{key!r}]", depth + 1)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValueError(f"a {type(value).__name__} at {where}, which is not a JSON value")
