"""The payloads of the runtime directory: the same fields as ``permit.api``'s models.

Each accepts a mapping or a model of the ``permit`` SDK (``RoleAssignmentCreate``,
``ResourceInstanceCreate``, ``RelationshipTupleCreate``...), so code written for
``permit.api`` passes the same objects to :attr:`LocalPolicyEngine.api
<permit_guard.engines.local.LocalPolicyEngine.api>`. Unknown fields are typos
and refused; attribute values must be JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from permit_guard.engines.local.policy import plain_json, reserved_names_free
from permit_guard.exceptions import DirectoryError
from permit_guard.model import DEFAULT_TENANT

__all__ = [
    "InstanceCreate",
    "InstanceUpdate",
    "RoleAssignment",
    "TupleChange",
    "UserSync",
    "read_payload",
]

_Key = Field(min_length=1, max_length=1024)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _WithAttributes(_Payload):
    attributes: dict[str, Any] | None = None

    @field_validator("attributes")
    @classmethod
    def _json_values(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        plain: dict[str, Any] | None = None if value is None else plain_json(value)
        return plain


class RoleAssignment(_Payload):
    """``RoleAssignmentCreate`` / ``RoleAssignmentRemove``: a role in a tenant or on an instance."""

    user: str = _Key
    role: str = _Key
    tenant: str | None = Field(default=None, min_length=1)
    resource_instance: str | None = Field(default=None, min_length=1)

    @property
    def in_tenant(self) -> str:
        """The tenant of a tenant-level assignment (``default`` when none is named)."""
        return self.tenant or DEFAULT_TENANT


class _InstanceAttributes(_WithAttributes):
    @field_validator("attributes")
    @classmethod
    def _not_built_in(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else reserved_names_free(value)


class InstanceCreate(_InstanceAttributes):
    """``ResourceInstanceCreate``: a resource instance, its tenant and attributes."""

    key: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9\-_]+$")
    resource: str = _Key
    tenant: str = _Key


class InstanceUpdate(_InstanceAttributes):
    """``ResourceInstanceUpdate``: an instance's new attributes (they replace the old)."""


class TupleChange(_Payload):
    """``RelationshipTupleCreate`` / ``RelationshipTupleDelete``."""

    subject: str = _Key
    relation: str = _Key
    object: str = _Key
    tenant: str | None = Field(default=None, min_length=1)


class UserSync(_WithAttributes):
    """``UserCreate`` for ``users.sync``: a user and their attributes."""

    key: str = _Key
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


P = TypeVar("P", bound=_Payload)


def read_payload(model: type[P], value: object, *, operation: str) -> P:
    """``value`` (a mapping or a ``permit`` SDK model) read as ``model``.

    Raises:
        DirectoryError: Naming ``operation`` and every problem, for anything
            that is not a payload of that shape.
    """
    data: object = value
    if not isinstance(value, Mapping):
        dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
        if isinstance(value, BaseModel) or callable(dump):
            try:
                data = dump(exclude_none=True) if dump is not None else value
            except Exception as exc:
                raise DirectoryError(operation, f"cannot read the payload: {exc}") from exc
        else:
            raise DirectoryError(
                operation, f"expected a mapping or a permit SDK model, not {type(value).__name__}"
            )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise DirectoryError(operation, problems) from exc
