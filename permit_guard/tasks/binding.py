"""What the guard records when it lets a task be created, and where it keeps it.

A binding ties a task id to the caller who submitted it and to the call the
guard allowed (name, version, task key, arguments, and the caller each guard on
the way identified). It is stored through the task's own Docket backend,
encoded with fastmcp-tasks' snapshot codec (encrypted when
``FASTMCP_TASKS_ENCRYPTION_KEY`` is set), and expires with the task.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fastmcp_tasks.encryption import (  # type: ignore[import-not-found,unused-ignore]
    snapshot_codec,
)

from permit_guard.exceptions import AccessDenied
from permit_guard.model import Principal

__all__ = ["BindingStore", "TaskBinding"]

logger = logging.getLogger("permit_guard")

#: How long a starting leg waits for its binding, written right after Docket
#: accepted the task (the task id is minted inside fastmcp-tasks).
_BINDING_WAIT_SECONDS: Final = 5.0
_BINDING_POLL_SECONDS: Final = 0.02

#: Bindings outlive the Docket execution by this much, as fastmcp-tasks' own keys do.
_TTL_BUFFER_SECONDS: Final = 15 * 60


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskBinding:
    """What the guard records when it lets a task be created; stored beside the task.

    Attributes:
        owner: The caller the task belongs to (the root guard's identity).
        name: The tool name the call named, at the root.
        version: The version the call asked for (``_meta.fastmcp.version``), if any.
        key: The component key Docket runs the task under.
        arguments: The arguments sent, for the check when a leg starts.
        callers: The caller each guard on the way identified, root first.
    """

    owner: Principal
    name: str
    version: str | None
    key: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    callers: tuple[Principal | None, ...] = ()

    def to_json(self) -> str:
        """The binding as stored (raises ``TypeError`` on attributes JSON cannot hold)."""
        return json.dumps(
            {
                "owner": _principal_json(self.owner),
                "name": self.name,
                "version": self.version,
                "key": self.key,
                "arguments": dict(self.arguments),
                "callers": [_principal_json(p) if p else None for p in self.callers],
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> TaskBinding:
        """A stored binding back."""
        data = json.loads(raw)
        return cls(
            owner=_principal(data["owner"]),
            name=data["name"],
            version=data["version"],
            key=data["key"],
            arguments=data["arguments"],
            callers=tuple(_principal(p) if p else None for p in data["callers"]),
        )

    def encoded(self) -> str:
        """The binding as stored.

        Raises:
            AccessDenied: When the caller's attributes have no JSON form: a
                caller the worker cannot be told about gets no task.
        """
        try:
            text: str = snapshot_codec().encode(self.to_json())
        except TypeError as exc:
            # Fail closed: a binding that cannot be stored refuses the task.
            logger.error("task of %r refused: its caller cannot be stored: %s", self.name, exc)
            raise AccessDenied.hidden("tool", self.name) from exc
        return text


class BindingStore:
    """Task bindings, kept beside the tasks in the server's Docket backend.

    Args:
        docket: Returns the server's Docket (``None`` before it starts).
    """

    def __init__(self, docket: Callable[[], Any]) -> None:
        self._docket = docket

    @staticmethod
    def _key(docket: Any, task_id: str) -> str:
        key: str = docket.key(f"permit_guard:task:{task_id}")
        return key

    @staticmethod
    def _ttl(docket: Any) -> int:
        return int(docket.execution_ttl.total_seconds()) + _TTL_BUFFER_SECONDS

    async def save(self, task_id: str, encoded: str) -> None:
        """Store the encoded binding of ``task_id``."""
        docket: Any = self._docket()
        async with docket.redis() as redis:
            await redis.set(self._key(docket, task_id), encoded, ex=self._ttl(docket))

    async def load(self, task_id: str) -> TaskBinding | None:
        """The binding, its expiry slid like fastmcp-tasks' own keys; ``None`` if absent."""
        docket: Any = self._docket()
        if docket is None:
            return None
        async with docket.redis() as redis:
            raw = await redis.get(self._key(docket, task_id))
            if raw is None:
                return None
            await redis.expire(self._key(docket, task_id), self._ttl(docket))
        try:
            return TaskBinding.from_json(snapshot_codec().decode(raw))
        except Exception as exc:
            # Fail closed: a binding that cannot be read binds the task to nobody.
            logger.error("task %s: unreadable binding: %s", task_id, exc)
            return None

    async def wait_for(self, task_id: str) -> TaskBinding | None:
        """The binding, waiting a few seconds for one written just after its task was queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BINDING_WAIT_SECONDS
        while True:
            binding = await self.load(task_id)
            if binding is not None or loop.time() >= deadline:
                return binding
            await asyncio.sleep(_BINDING_POLL_SECONDS)


def _principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "key": principal.key,
        "tenant": principal.tenant,
        "attributes": dict(principal.attributes),
    }


def _principal(data: Mapping[str, Any]) -> Principal:
    return Principal(
        key=data["key"], tenant=data.get("tenant"), attributes=dict(data.get("attributes") or {})
    )
