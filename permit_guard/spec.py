"""The guard spec: what the decorators record on a function, and how to read it back.

A leaf module: the decorators write specs, the component resolver reads them,
and neither needs the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from permit_guard.exceptions import DecoratorError

__all__ = [
    "SPEC_ATTRIBUTE",
    "AttributeLoader",
    "Fixed",
    "GuardSpec",
    "Loader",
    "fixed",
    "record_spec",
    "spec_of",
    "specs_recorded",
]

#: The function attribute a spec is stored under.
SPEC_ATTRIBUTE: Final = "__permit_guard_spec__"

#: ``__wrapped__`` chains longer than this are not followed.
_MAX_WRAPPED_DEPTH = 16

#: Specs recorded so far, by :func:`record_spec`: what the guard keeps per list
#: holds only while this stays the same.
_recorded = 0


def record_spec(fn: object, spec: GuardSpec) -> None:
    """Record ``spec`` on ``fn``: the one way a spec is written.

    Raises:
        AttributeError: If ``fn`` takes no attributes.
        TypeError: Likewise, for some built-in callables.
    """
    global _recorded
    setattr(fn, SPEC_ATTRIBUTE, spec)
    _recorded += 1


def specs_recorded() -> int:
    """How many specs :func:`record_spec` has recorded, in this process."""
    return _recorded


@dataclass(frozen=True, kw_only=True, slots=True)
class Fixed:
    """A literal resource key or tenant, made by :func:`fixed`."""

    value: str


def fixed(value: str) -> Fixed:
    """A literal value for ``key`` or ``tenant``, instead of an argument name.

    A plain string given as ``key`` / ``tenant`` always names an argument of
    the function (and is checked against its signature), so a typo or a renamed
    parameter is an error rather than a silently fixed value.

    Args:
        value: The resource key or tenant to use for every call.

    Raises:
        DecoratorError: If ``value`` is not a non-empty string.
    """
    if not isinstance(value, str) or not value:
        raise DecoratorError(f"fixed() takes a non-empty string, got {value!r}", function="fixed")
    return Fixed(value=value)


#: Takes (by name) arguments of the component and returns resource attributes
#: from the server's own data; sync or async.
AttributeLoader = Callable[..., Mapping[str, Any] | Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Loader:
    """An attribute loader, as ``require_permission(attributes=...)`` records it.

    Attributes:
        fn: The loader.
        arguments: The component arguments it takes, by name.
        is_async: Whether it is awaited (else run in a worker thread).
        name: Its qualified name, for logs and audit reasons.
    """

    fn: AttributeLoader
    arguments: tuple[str, ...]
    is_async: bool
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GuardSpec:
    """What the guard knows about one decorated function.

    Attributes:
        mode: ``"require"`` (checked with the engine) or ``"public"``.
        action: Explicit action, or ``None`` for the method mapping.
        resource: Explicit resource type, or ``None`` for the method mapping.
        key_arg: Argument whose value is the resource instance key.
        key_value: Fixed resource instance key.
        tenant_arg: Argument whose value is the tenant.
        tenant_value: Fixed tenant.
        abac_args: Arguments sent as resource attributes; ``None`` means all.
        abac_prefix: Prefix of argument attributes; ``None`` means the setting's.
        loader: Loads resource attributes from the server's data for each
            call, read or render (never for lists).
        function: Qualified name of the function, for messages.
    """

    mode: Literal["require", "public"] | None = None
    action: str | None = None
    resource: str | None = None
    key_arg: str | None = None
    key_value: str | None = None
    tenant_arg: str | None = None
    tenant_value: str | None = None
    abac_args: tuple[str, ...] | None = None
    abac_prefix: str | None = None
    loader: Loader | None = None
    function: str = ""

    @property
    def is_public(self) -> bool:
        """Whether the component is never checked."""
        return self.mode == "public"

    @property
    def is_declared(self) -> bool:
        """Whether a requirement or ``@public`` was declared.

        ``@abac_from_args`` alone only selects arguments: under default deny
        such a component is still undecorated.
        """
        return self.mode is not None

    @property
    def reads_arguments(self) -> bool:
        """Whether the request depends on argument values (key, tenant, selected or loader's)."""
        return (
            self.key_arg is not None
            or self.tenant_arg is not None
            or self.abac_args != ()
            or (self.loader is not None and self.loader.arguments != ())
        )


def spec_of(fn: object) -> GuardSpec | None:
    """The spec recorded on ``fn`` or on a function it wraps (``__wrapped__``)."""
    seen = 0
    while fn is not None and seen < _MAX_WRAPPED_DEPTH:
        spec: GuardSpec | None = getattr(fn, SPEC_ATTRIBUTE, None)
        if spec is not None:
            return spec
        fn = getattr(fn, "__wrapped__", None)
        seen += 1
    return None
