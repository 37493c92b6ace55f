"""The PDP API on the wire: its paths, query schema, answers and error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Decision, Principal, Resource

_ALLOWED: Final = "/allowed"
_BULK: Final = "/allowed/bulk"
_HEALTH: Final = "/health"
_DECISION_PATHS: Final = frozenset({_ALLOWED, _BULK})
# The AuthZEN Authorization API 1.0, as Permit's PDP serves it (permit_guard.testing._authzen).
_EVALUATION: Final = "/access/v1/evaluation"
_EVALUATIONS: Final = "/access/v1/evaluations"
_WELL_KNOWN: Final = "/.well-known/authzen-configuration"
_AUTHZEN_PATHS: Final = frozenset({_EVALUATION, _EVALUATIONS, _WELL_KNOWN})
# Where bodies are recorded and faults apply by default; where a short_bulk fault can apply.
_ALL_DECISION_PATHS: Final = _DECISION_PATHS | {_EVALUATION, _EVALUATIONS}
_BATCH_PATHS: Final = frozenset({_BULK, _EVALUATIONS})
_JSON: Final = "application/json"
_TEXT: Final = "text/plain; charset=utf-8"
_INVALID_TOKEN: Final = "Invalid PDP token"
_DEFAULT_DETAILS: Final[Mapping[int, str]] = {
    401: _INVALID_TOKEN,
    501: (
        "ABAC and ReBAC queries are not supported by the cloud PDP; "
        "run a local PDP container to use them"
    ),
}


def _default_detail(code: int) -> str:
    known = _DEFAULT_DETAILS.get(code)
    if known is not None:
        return known
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


class _NotJSON:
    """A request body that does not decode as JSON."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


_ABSENT: Final = object()


def _is_json(parsed: Any) -> bool:
    return parsed is not _ABSENT and not isinstance(parsed, _NotJSON)


def _error(kind: str, loc: tuple[str | int, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": list(loc), "msg": msg, "input": value}


def _json_invalid(error: str) -> dict[str, Any]:
    return {
        "type": "json_invalid",
        "loc": ["body", 0],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error},
    }


_TYPE_ERRORS: Final[Mapping[type, tuple[str, str]]] = {
    str: ("string_type", "Input should be a valid string"),
    dict: ("dict_type", "Input should be a valid dictionary"),
}


def _field(
    data: dict[str, Any],
    name: str,
    kind: type,
    loc: tuple[str | int, ...],
    errors: list[dict[str, Any]],
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """``data[name]`` if it is a ``kind``; else record an error. Optional fields may be null."""
    if name not in data:
        if required:
            errors.append(_error("missing", (*loc, name), "Field required", data))
        return default
    value = data[name]
    if value is None and not required:
        return default
    if not isinstance(value, kind):
        code, msg = _TYPE_ERRORS[kind]
        errors.append(_error(code, (*loc, name), msg, value))
        return default
    return value


def _parse_query(
    data: Any, loc: tuple[str | int, ...], errors: list[dict[str, Any]]
) -> AuthzRequest | None:
    """The PDP's query schema: required ``user.key``, ``action``, ``resource.type``.

    Optional fields may be absent or null: ``resource.tenant`` then defaults to
    ``"default"``, attributes and contexts to ``{}``. Other fields (``firstName``,
    ``email``, ``resource.id``, ``sdk``...) are accepted and ignored.
    """
    if not isinstance(data, dict):
        errors.append(_error("dict_type", loc, "Input should be a valid dictionary", data))
        return None
    user = _field(data, "user", dict, loc, errors, required=True)
    action = _field(data, "action", str, loc, errors, required=True)
    resource = _field(data, "resource", dict, loc, errors, required=True)
    context = _field(data, "context", dict, loc, errors, default={})
    user_key: Any = None
    user_attributes: Any = {}
    if user is not None:
        user_loc = (*loc, "user")
        user_key = _field(user, "key", str, user_loc, errors, required=True)
        user_attributes = _field(user, "attributes", dict, user_loc, errors, default={})
    type_name: Any = None
    key: Any = None
    tenant: Any = DEFAULT_TENANT
    resource_attributes: Any = {}
    if resource is not None:
        resource_loc = (*loc, "resource")
        type_name = _field(resource, "type", str, resource_loc, errors, required=True)
        key = _field(resource, "key", str, resource_loc, errors)
        tenant = _field(resource, "tenant", str, resource_loc, errors, default=DEFAULT_TENANT)
        resource_attributes = _field(resource, "attributes", dict, resource_loc, errors, default={})
        _field(resource, "context", dict, resource_loc, errors, default={})
    if errors or user_key is None or action is None or type_name is None:
        return None
    return AuthzRequest(
        user=Principal(key=user_key, attributes=user_attributes),
        action=action,
        resource=Resource(type=type_name, key=key, tenant=tenant, attributes=resource_attributes),
        context=context,
    )


def _answer(query: Any, decision: Decision) -> dict[str, Any]:
    # The real PDP's fields (allow, query, debug, result), plus the engine's reason.
    return {
        "allow": decision.allowed,
        "query": query,
        "debug": {"reason": decision.reason},
        "result": decision.allowed,
        "reason": decision.reason,
    }


def _decided(
    engine: LocalPolicyEngine, query: Any, loc: tuple[str | int, ...]
) -> dict[str, Any] | list[Any]:
    """The answer to one ``/allowed`` query, or its validation errors (a list)."""
    errors: list[dict[str, Any]] = []
    request = _parse_query(query, loc, errors)
    if request is None:
        return errors
    return _answer(query, engine.decide(request))
