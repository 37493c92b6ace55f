"""Fault: the ways LocalPDP misbehaves on demand."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Self

from permit_guard.testing._wire import _JSON, _default_detail

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal["delay", "respond", "short_bulk", "drop"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """One way for :class:`LocalPDP` to misbehave; build it with the class methods.

    Arm it with :meth:`LocalPDP.inject`. Every fault first waits ``seconds``
    (a stop of the server cuts the wait short and drops the connection), then:

    - ``"delay"`` answers normally;
    - ``"respond"`` answers ``status_code`` with ``content_type`` and ``body``
      instead of the real answer, whatever the request;
    - ``"short_bulk"`` answers ``/allowed/bulk`` (and AuthZEN's
      ``/access/v1/evaluations``) with its last ``missing``
      answers left out;
    - ``"drop"`` closes the connection without answering.

    Attributes:
        kind: What the fault does, as listed above.
        seconds: How long to wait before acting.
        status_code: The status of a ``"respond"`` fault.
        content_type: The ``Content-Type`` of a ``"respond"`` fault.
        body: The body of a ``"respond"`` fault, sent as is.
        missing: How many answers a ``"short_bulk"`` fault leaves out.
    """

    kind: FaultKind
    seconds: float = 0.0
    status_code: int = 200
    content_type: str = _JSON
    body: bytes = b""
    missing: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"Fault delay must be a finite number >= 0, not {self.seconds!r}")
        if not 200 <= self.status_code <= 599:
            raise ValueError(f"Fault status must be in 200..599, not {self.status_code!r}")
        if self.kind == "short_bulk" and self.missing < 1:
            raise ValueError(
                f"Fault.short_bulk must leave out at least 1 answer, not {self.missing}"
            )

    @classmethod
    def delay(cls, seconds: float) -> Self:
        """Answer normally, but only after ``seconds``.

        Args:
            seconds: The wait; :meth:`LocalPDP.stop` cuts it short.

        Returns:
            The fault.
        """
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def status(cls, code: int, *, detail: str | None = None, delay: float = 0.0) -> Self:
        """Answer ``code`` with a JSON body ``{"detail": ...}``, as the PDP's errors look.

        The default detail is the real PDP's where it is known: ``"Invalid PDP
        token"`` for 401, the cloud PDP's refusal of ABAC/ReBAC queries for 501,
        and the status phrase (``"Service Unavailable"``...) otherwise.

        Args:
            code: The HTTP status, 400..599.
            detail: The ``detail`` to send instead of the default.
            delay: Seconds to wait before answering.

        Returns:
            The fault.

        Raises:
            ValueError: If ``code`` is not an error status.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"Fault.status takes an error status (400..599), not {code!r}")
        text = detail if detail is not None else _default_detail(code)
        return cls(
            kind="respond",
            seconds=delay,
            status_code=code,
            body=json.dumps({"detail": text}).encode(),
        )

    @classmethod
    def not_json(
        cls,
        *,
        code: int = 200,
        body: str = "<html>Bad gateway</html>",
        content_type: str = "text/html",
        delay: float = 0.0,
    ) -> Self:
        """Answer with a body that is not JSON, as a proxy in front of the PDP may.

        Args:
            code: The HTTP status (200 by default: the status alone looks fine).
            body: The body.
            content_type: Its ``Content-Type``.
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        return cls(
            kind="respond",
            seconds=delay,
            status_code=code,
            content_type=content_type,
            body=body.encode(),
        )

    @classmethod
    def malformed_json(cls, *, delay: float = 0.0) -> Self:
        """Answer 200, ``Content-Type: application/json``, with the cut-off body ``{"allow": tru``.

        Args:
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        return cls(kind="respond", seconds=delay, body=b'{"allow": tru')

    @classmethod
    def wrong_shape(cls, body: Any = None, *, delay: float = 0.0) -> Self:
        """Answer 200 with well-formed JSON of the wrong shape.

        Args:
            body: The JSON value to send; ``{"allowed": "yes"}`` when omitted.
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        value = {"allowed": "yes"} if body is None else body
        return cls(kind="respond", seconds=delay, body=json.dumps(value).encode())

    @classmethod
    def short_bulk(cls, *, missing: int = 1, delay: float = 0.0) -> Self:
        """Answer ``/allowed/bulk`` correctly, but with the last ``missing`` answers left out.

        A shorter list than was asked is what a real PDP may send, and a client
        that zips answers with questions then silently misses some of them.

        Args:
            missing: How many answers to leave out (at least 1).
            delay: Seconds to wait before answering.

        Returns:
            The fault; it applies to ``/allowed/bulk`` only.
        """
        return cls(kind="short_bulk", seconds=delay, missing=missing)

    @classmethod
    def drop(cls, *, delay: float = 0.0) -> Self:
        """Close the connection without answering, after reading the request.

        Args:
            delay: Seconds to wait before closing.

        Returns:
            The fault.
        """
        return cls(kind="drop", seconds=delay)


@dataclass(slots=True)
class _Armed:
    """An injected fault: where it applies, and how many more times (None: until cleared)."""

    fault: Fault
    paths: frozenset[str]
    remaining: int | None
