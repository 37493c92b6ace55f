"""The AuthZEN Authorization API 1.0 on the wire, as Permit's PDP serves it, for LocalPDP.

Permit's PDP (``pdp-server/src/api/authzen`` in github.com/permitio/PDP) serves
``POST /access/v1/evaluation``, ``POST /access/v1/evaluations`` and ``GET
/.well-known/authzen-configuration`` behind its bearer API key, and maps
AuthZEN onto its own query: ``subject.id`` is the user key and
``subject.properties`` the user's attributes; ``resource.id`` is the instance
key, ``resource.properties.tenant`` the tenant (taken out of the attributes;
absent or not a string: the default tenant), the other properties the
resource attributes; ``action.name`` the action; ``context`` the context. In
a batch, the top-level ``subject``, ``action`` and ``resource`` are defaults
each item may override, and the top-level ``context`` is merged under each
item's. Errors are plain-text bodies, with axum's statuses: 401 without an
``Authorization`` header, 403 for a wrong key, 415 without a JSON content
type, 400 for a body that is not JSON or a batch that cannot be completed, 422
for JSON of the wrong shape.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any, Final

from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Decision, Principal, Resource
from permit_guard.testing._wire import (
    _ABSENT,
    _EVALUATION,
    _EVALUATIONS,
    _JSON,
    _TEXT,
    _WELL_KNOWN,
    _NotJSON,
)

_REFUSED: Final = "You are not authorized to access this resource, please check your API key."
_ENTITIES: Final = ("subject", "action", "resource")

Decide = Callable[[AuthzRequest], Decision]
Reply = tuple[int, bytes, str]


class _Invalid(Exception):
    """A body of the wrong shape: answered 422, as axum's JSON extractor does."""


def route(
    method: str,
    path: str,
    parsed: Any,
    *,
    headers: Any,
    api_key: str,
    decide: Decide,
    missing: int = 0,
) -> Reply:
    """The answer to one request on an AuthZEN path: status, body and content type.

    Args:
        method: The HTTP method.
        path: One of the AuthZEN paths.
        parsed: The body as JSON, ``_ABSENT``, or a ``_NotJSON``.
        headers: The request headers (``Authorization``, ``Content-Type``, ``Host``).
        api_key: The bearer key clients must send.
        decide: Decides one request.
        missing: How many trailing answers of a batch to leave out (a fault).
    """
    refused = _authenticate(headers.get("Authorization"), api_key)
    if refused is not None:
        return refused
    if path == _WELL_KNOWN:
        if method not in ("GET", "HEAD"):
            return 405, b"", _TEXT
        return _json(200, _metadata(headers.get("Host")))
    if method != "POST":
        return 405, b"", _TEXT
    media = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media != _JSON and not (media.startswith("application/") and media.endswith("+json")):
        return _text(415, "Expected request with `Content-Type: application/json`")
    if parsed is _ABSENT:
        return _text(400, "Failed to parse the request body as JSON: EOF while parsing a value")
    if isinstance(parsed, _NotJSON):
        return _text(400, f"Failed to parse the request body as JSON: {parsed.error}")
    try:
        if path == _EVALUATION:
            return _json(200, _answer(decide(_request(_single(parsed)))))
        return _evaluations(parsed, decide, missing)
    except _Invalid as exc:
        return _text(422, f"Failed to deserialize the JSON body into the target type: {exc}")


def _authenticate(header: str | None, api_key: str) -> Reply | None:
    if header is None:
        return _text(401, "Missing Authorization header")
    if not header.lower().startswith("bearer "):
        return _text(403, _REFUSED)
    if not hmac.compare_digest(header[7:].encode(), api_key.encode()):
        return _text(403, _REFUSED)
    return None


def _metadata(host: str | None) -> dict[str, str]:
    # Permit's PDP names itself after the Host header the client sent.
    base = f"http://{host or 'localhost:7766'}"
    return {
        "policy_decision_point": base,
        "access_evaluation_endpoint": base + _EVALUATION,
        "access_evaluations_endpoint": base + _EVALUATIONS,
    }


def _evaluations(parsed: Any, decide: Decide, missing: int) -> Reply:
    body = _object(parsed, "")
    items = body.get("evaluations")
    if not isinstance(items, list):
        raise _Invalid(
            "missing field `evaluations`" if items is None else "evaluations: not a list"
        )
    _optional_object(body, "options", "")
    defaults = {key: _entity(body, key, "") for key in _ENTITIES}
    shared_context = _optional_object(body, "context", "")
    if not items:
        return _text(400, "No evaluations provided")
    requests: list[AuthzRequest] = []
    problems: list[str] = []
    for index, raw in enumerate(items):
        item = _object(raw, f"evaluations[{index}]")
        chosen = {key: _entity(item, key, f"evaluations[{index}].") for key in _ENTITIES}
        merged = {key: chosen[key] or defaults[key] for key in _ENTITIES}
        absent = [key for key in _ENTITIES if merged[key] is None]
        if absent:
            problems.append(f"- Evaluation at position {index}: missing {', '.join(absent)}")
            continue
        context = {**shared_context, **_optional_object(item, "context", f"evaluations[{index}].")}
        requests.append(_request({**merged, "context": context}))
    if problems:
        return _text(400, "Invalid evaluations request:\n" + "\n".join(problems))
    answers = [_answer(decide(request)) for request in requests]
    if missing:
        answers = answers[: max(0, len(answers) - missing)]
    return _json(200, {"evaluations": answers})


def _single(parsed: Any) -> dict[str, Any]:
    body = _object(parsed, "")
    entities: dict[str, Any] = {}
    for key in _ENTITIES:
        entity = _entity(body, key, "")
        if entity is None:
            raise _Invalid(f"missing field `{key}`")
        entities[key] = entity
    entities["context"] = _optional_object(body, "context", "")
    return entities


def _entity(body: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    """``subject``, ``action`` or ``resource`` checked for its required fields, or None."""
    value = body.get(key)
    if value is None:
        return None
    entity = _object(value, f"{where}{key}")
    required = "name" if key == "action" else "type"
    for name, needed in ((required, True), ("id", False)):
        if name not in entity or entity[name] is None:
            if needed:
                raise _Invalid(f"{where}{key}: missing field `{name}`")
            continue
        if not isinstance(entity[name], str):
            raise _Invalid(f"{where}{key}.{name}: invalid type, expected a string")
    _optional_object(entity, "properties", f"{where}{key}.")
    return entity


def _request(entities: dict[str, Any]) -> AuthzRequest:
    subject, action, resource = (entities[key] for key in _ENTITIES)
    properties = dict(resource.get("properties") or {})
    tenant = properties.pop("tenant", None)
    return AuthzRequest(
        user=Principal(key=subject.get("id") or "", attributes=subject.get("properties") or {}),
        action=action["name"],
        resource=Resource(
            type=resource["type"],
            key=resource.get("id"),
            tenant=tenant if isinstance(tenant, str) and tenant else DEFAULT_TENANT,
            attributes=properties,
        ),
        context=entities.get("context") or {},
    )


def _answer(decision: Decision) -> dict[str, Any]:
    # Permit's PDP answers its debug information as the decision's context.
    return {"decision": decision.allowed, "context": {"reason": decision.reason}}


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{where or 'body'}: invalid type, expected a map")
    return value


def _optional_object(body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    return _object(value, f"{where}{key}")


def _json(status: int, payload: Any) -> Reply:
    return status, json.dumps(payload).encode(), _JSON


def _text(status: int, message: str) -> Reply:
    return status, message.encode(), _TEXT
