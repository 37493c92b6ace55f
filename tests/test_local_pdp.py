"""LocalPDP: the Permit.io PDP API on loopback, driven by real HTTP clients and the real SDK."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from permit_guard import AuthzRequest, LocalPolicyEngine, Principal, Resource
from permit_guard.testing import Fault, LocalPDP

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-pdp-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["greet", "refund"]},
        "invoice": {"actions": ["read", "delete"], "roles": {"owner": ["read", "delete"]}},
    },
    "resource_sets": {
        "small_refunds": {
            "resource": "mcp_server",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
        }
    },
    "user_sets": {
        "finance": {
            "condition": {"allOf": [{"user.department": {"equals": "finance"}}]},
            "grants": {"small_refunds": ["refund"]},
        }
    },
    "roles": {
        "admin": {"grants": {"mcp_server": ["*"], "invoice": ["*"]}},
        "viewer": {"grants": {"mcp_server": ["greet"], "invoice": ["read"]}},
    },
    "users": {
        "alice": {"roles": ["admin"]},
        "bob": {"roles": {"default": ["viewer"], "acme": ["admin"]}},
        "carol": {"resource_roles": {"invoice:42": ["owner"]}},
    },
}

ENGINE = LocalPolicyEngine.from_dict(POLICY)


def ask(
    user: str,
    action: str,
    type_: str = "mcp_server",
    *,
    key: str | None = None,
    tenant: str = "default",
    user_attributes: dict[str, Any] | None = None,
    attributes: dict[str, Any] | None = None,
) -> AuthzRequest:
    """An authorization request, briefly."""
    return AuthzRequest(
        user=Principal(key=user, attributes=user_attributes or {}),
        action=action,
        resource=Resource(type=type_, key=key, tenant=tenant, attributes=attributes or {}),
    )


REQUESTS = [
    ask("alice", "refund"),
    ask("bob", "greet"),
    ask("bob", "refund"),
    ask("bob", "refund", tenant="acme"),
    ask("carol", "delete", "invoice", key="42"),
    ask("carol", "delete", "invoice", key="43"),
    ask("dave", "refund", user_attributes={"department": "finance"}, attributes={"arg_amount": 50}),
    ask(
        "dave", "refund", user_attributes={"department": "finance"}, attributes={"arg_amount": 500}
    ),
    ask("eve", "greet"),
    ask("alice", "fly"),
]


@pytest.fixture
def pdp() -> Iterator[LocalPDP]:
    """A running LocalPDP on ENGINE; no errors inside it by the end of the test."""
    with LocalPDP(ENGINE, api_key=KEY) as server:
        yield server
        assert server.errors == []


@pytest.fixture
async def client(pdp: LocalPDP) -> AsyncIterator[httpx.AsyncClient]:
    """An async httpx client on the PDP, sending the right key."""
    async with httpx.AsyncClient(base_url=pdp.url, headers=AUTH, timeout=10) as http:
        yield http


def import_permit() -> Any:
    """The permit SDK's Permit class; the package warns when first imported."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from permit import Permit
    return Permit


# -- decisions -----------------------------------------------------------------------------------


async def test_allowed_answers_as_the_engine_decides(client: httpx.AsyncClient) -> None:
    """POST /allowed answers each query with the engine's decision and reason."""
    for request in REQUESTS:
        response = await client.post("/allowed", json=request.to_pdp_json())
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        expected = ENGINE.decide(request)
        body = response.json()
        assert (body["allow"], body["reason"]) == (expected.allowed, expected.reason)
    assert {ENGINE.decide(r).allowed for r in REQUESTS} == {True, False}


async def test_bulk_answers_in_request_order(client: httpx.AsyncClient) -> None:
    """POST /allowed/bulk answers a bare array with one decision per query, in order."""
    for order in (REQUESTS, REQUESTS[::-1]):
        response = await client.post("/allowed/bulk", json=[r.to_pdp_json() for r in order])
        assert response.status_code == 200
        answers = response.json()["allow"]
        assert [a["allow"] for a in answers] == [ENGINE.decide(r).allowed for r in order]
        assert [a["reason"] for a in answers] == [ENGINE.decide(r).reason for r in order]


async def test_empty_bulk_is_an_empty_answer(client: httpx.AsyncClient) -> None:
    """An empty bulk request is answered with an empty list."""
    response = await client.post("/allowed/bulk", json=[])
    assert (response.status_code, response.json()) == (200, {"allow": []})


async def test_answers_carry_the_real_pdps_extra_fields(client: httpx.AsyncClient) -> None:
    """Answers also carry query, debug and result, as the real PDP's do."""
    query = ask("alice", "refund").to_pdp_json()
    body = (await client.post("/allowed", json=query)).json()
    assert body["query"] == query
    assert body["result"] is True
    assert body["debug"] == {"reason": body["reason"]}


async def test_optional_fields_take_the_pdps_defaults(client: httpx.AsyncClient) -> None:
    """Absent or null tenant, key, attributes and contexts default; unread fields are ignored."""
    bare = {"user": {"key": "bob"}, "action": "refund", "resource": {"type": "mcp_server"}}
    nulls = {
        "user": {"key": "bob", "attributes": None, "firstName": "Bob", "email": "b@example.com"},
        "action": "refund",
        "resource": {"type": "mcp_server", "key": None, "tenant": None, "attributes": None},
        "context": None,
        "sdk": "python",
    }
    acme = {**bare, "resource": {"type": "mcp_server", "tenant": "acme", "id": "x"}}
    answers = [(await client.post("/allowed", json=q)).json() for q in (bare, nulls, acme)]
    assert [a["allow"] for a in answers] == [False, False, True]
    assert "tenant 'default'" in answers[0]["reason"]
    assert "tenant 'acme'" in answers[2]["reason"]


async def test_request_attributes_reach_the_engine(client: httpx.AsyncClient) -> None:
    """User and resource attributes in the body decide ABAC rules."""
    query = {
        "user": {"key": "dave", "attributes": {"department": "finance"}},
        "action": "refund",
        "resource": {"type": "mcp_server", "attributes": {"arg_amount": 100}},
    }
    assert (await client.post("/allowed", json=query)).json()["allow"] is True
    query["resource"]["attributes"]["arg_amount"] = 101  # type: ignore[index]
    assert (await client.post("/allowed", json=query)).json()["allow"] is False


async def test_chunked_request_body_is_read(client: httpx.AsyncClient) -> None:
    """A request body sent with chunked transfer encoding is decided like any other."""
    payload = httpx.Request("POST", "/", json=ask("alice", "refund").to_pdp_json()).content

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 7):
            yield payload[start : start + 7]

    response = await client.post(
        "/allowed", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["allow"] is True


# -- errors the real PDP answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": f"Bearer {KEY} extra"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "not-bearer", "extra-part", "no-key"],
)
@pytest.mark.parametrize("path", ["/allowed", "/allowed/bulk"])
async def test_bad_key_is_401(pdp: LocalPDP, path: str, headers: dict[str, str]) -> None:
    """A missing, wrong or malformed bearer key is 401 {"detail": "Invalid PDP token"}."""
    query = ask("alice", "refund").to_pdp_json()
    body = query if path == "/allowed" else [query]
    async with httpx.AsyncClient(base_url=pdp.url, headers=headers) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid PDP token"}


async def test_bearer_scheme_is_case_insensitive(pdp: LocalPDP) -> None:
    """The scheme may be spelled "bearer", as the real PDP accepts."""
    async with httpx.AsyncClient(base_url=pdp.url) as http:
        response = await http.post(
            "/allowed",
            json=ask("alice", "refund").to_pdp_json(),
            headers={"Authorization": f"bearer {KEY}"},
        )
    assert response.json()["allow"] is True


async def test_health_needs_no_key(pdp: LocalPDP) -> None:
    """GET /health answers 200 {"status": "ok"} without a key."""
    async with httpx.AsyncClient(base_url=pdp.url) as http:
        response = await http.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_unknown_path_is_404_json(client: httpx.AsyncClient) -> None:
    """An unknown path is 404 with a JSON detail."""
    response = await client.post("/allowed_url", json={})
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize(("method", "path"), [("GET", "/allowed"), ("POST", "/health")])
async def test_wrong_method_is_405(client: httpx.AsyncClient, method: str, path: str) -> None:
    """A known path with another method is 405 with a JSON detail."""
    response = await client.request(method, path)
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})


async def test_body_that_is_not_json_is_422(client: httpx.AsyncClient) -> None:
    """A body that does not decode is 422 json_invalid, as FastAPI answers."""
    response = await client.post(
        "/allowed", content=b'{"user": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("json_invalid", ["body", 0])


async def test_undecodable_body_is_422_even_without_a_key(pdp: LocalPDP) -> None:
    """As in FastAPI, a body that does not decode is refused before the key is checked."""
    async with httpx.AsyncClient(base_url=pdp.url) as http:
        response = await http.post("/allowed", content=b"nope")
    assert response.status_code == 422


GOOD = {"user": {"key": "alice"}, "action": "refund", "resource": {"type": "mcp_server"}}


@pytest.mark.parametrize(
    ("path", "body", "kind", "loc"),
    [
        ("/allowed", None, "missing", ["body"]),
        ("/allowed", [GOOD], "dict_type", ["body"]),
        ("/allowed", {**GOOD, "user": "alice"}, "dict_type", ["body", "user"]),
        ("/allowed", {**GOOD, "user": {}}, "missing", ["body", "user", "key"]),
        ("/allowed", {**GOOD, "user": {"key": 7}}, "string_type", ["body", "user", "key"]),
        (
            "/allowed",
            {"user": {"key": "a"}, "resource": {"type": "t"}},
            "missing",
            ["body", "action"],
        ),
        ("/allowed", {**GOOD, "action": None}, "string_type", ["body", "action"]),
        ("/allowed", {**GOOD, "resource": {"key": "1"}}, "missing", ["body", "resource", "type"]),
        (
            "/allowed",
            {**GOOD, "resource": {"type": "t", "attributes": []}},
            "dict_type",
            ["body", "resource", "attributes"],
        ),
        ("/allowed", {**GOOD, "context": "x"}, "dict_type", ["body", "context"]),
        ("/allowed/bulk", GOOD, "list_type", ["body"]),
        ("/allowed/bulk", [GOOD, {**GOOD, "action": 1}], "string_type", ["body", 1, "action"]),
    ],
)
async def test_query_of_the_wrong_shape_is_422(
    pdp: LocalPDP, client: httpx.AsyncClient, path: str, body: Any, kind: str, loc: list[Any]
) -> None:
    """A body that is not a query is 422 with FastAPI's detail list, naming where it is wrong."""
    response = await (client.post(path) if body is None else client.post(path, json=body))
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {"type": kind, "loc": loc} in [{"type": e["type"], "loc": e["loc"]} for e in errors]
    assert all({"type", "loc", "msg", "input"} <= set(e) for e in errors)


async def test_body_that_is_not_declared_json_is_422(client: httpx.AsyncClient) -> None:
    """A body sent as text/plain is 422, as FastAPI then does not read it as JSON."""
    response = await client.post(
        "/allowed", content=b'{"user": {"key": "a"}}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422


async def test_invalid_content_length_is_400_and_closes(pdp: LocalPDP) -> None:
    """A Content-Length that is not a number is 400 JSON, and the connection is closed."""
    with socket.create_connection(("127.0.0.1", int(pdp.url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"POST /allowed HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")
        reply = b""
        for _ in range(100):  # bounded: the server closes after its answer
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in head
    assert body == b'{"detail": "Invalid Content-Length"}'


# -- counters and keep-alive ---------------------------------------------------------------------


async def test_counters_count_and_reset(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """requests, requests_by_path, connections and bodies count what arrived; reset zeroes them."""
    one = ask("alice", "refund").to_pdp_json()
    await client.post("/allowed", json=one)
    await client.post("/allowed/bulk", json=[one, one])
    await client.get("/health")
    await client.get("/nowhere")
    async with httpx.AsyncClient(base_url=pdp.url) as stranger:
        await stranger.post("/allowed", json={"user": "x"})  # no key: still received
    assert pdp.requests == 5
    assert pdp.requests_by_path == {"/allowed": 2, "/allowed/bulk": 1, "/health": 1, "/nowhere": 1}
    assert pdp.connections == 2
    assert pdp.bodies == [one, [one, one], {"user": "x"}]

    pdp.reset()
    assert (pdp.requests, pdp.requests_by_path, pdp.connections, pdp.bodies) == (0, {}, 0, [])
    await client.get("/health")
    assert (pdp.requests, pdp.connections) == (1, 0)  # the kept-alive connection was counted before


async def test_counters_return_copies(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Mutating what a counter returned does not change the PDP's own record."""
    await client.post("/allowed", json=GOOD)
    pdp.requests_by_path.clear()
    pdp.bodies.clear()
    assert pdp.requests_by_path == {"/allowed": 1}
    assert pdp.bodies == [GOOD]


async def test_keep_alive_serves_many_requests_over_one_connection(
    pdp: LocalPDP, client: httpx.AsyncClient
) -> None:
    """A pooled client sends 100 requests over one HTTP/1.1 connection."""
    query = ask("bob", "greet").to_pdp_json()
    for _ in range(100):
        response = await client.post("/allowed", json=query)
        assert response.json()["allow"] is True
    assert pdp.connections == 1
    assert pdp.requests == 100


def test_keep_alive_with_a_sync_client(pdp: LocalPDP) -> None:
    """A sync httpx.Client also reuses one connection, across every path."""
    with httpx.Client(base_url=pdp.url, headers=AUTH) as http:
        for _ in range(20):
            http.get("/health")
            http.post("/allowed/bulk", json=[GOOD])
            http.get("/nowhere")
    assert pdp.connections == 1
    assert pdp.requests == 60


async def test_concurrent_requests_are_all_answered_and_counted(pdp: LocalPDP) -> None:
    """Concurrent requests on many connections are all answered, and the counters agree."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=pdp.url, headers=AUTH, limits=limits) as http:
        responses = await asyncio.gather(
            *(http.post("/allowed", json=r.to_pdp_json()) for r in REQUESTS * 20)
        )
    assert [r.json()["allow"] for r in responses] == [
        ENGINE.decide(r).allowed for r in REQUESTS
    ] * 20
    assert pdp.requests == len(REQUESTS) * 20
    assert len(pdp.bodies) == len(REQUESTS) * 20
    assert 1 <= pdp.connections <= 16


# -- faults ----------------------------------------------------------------------------------------


async def test_status_faults_observed(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.status answers its code with {"detail": ...}; 501 speaks of ABAC and ReBAC."""
    cases = [
        (Fault.status(503), 503, "Service Unavailable"),
        (Fault.status(500), 500, "Internal Server Error"),
        (Fault.status(401), 401, "Invalid PDP token"),
        (Fault.status(429, detail="slow down"), 429, "slow down"),
    ]
    for fault, status, detail in cases:
        for path, body in (("/allowed", GOOD), ("/allowed/bulk", [GOOD])):
            pdp.inject(fault, times=1)
            response = await client.post(path, json=body)
            assert response.status_code == status
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {"detail": detail}
    pdp.inject(Fault.status(501), times=1)
    response = await client.post("/allowed", json=GOOD)
    assert response.status_code == 501
    assert "ABAC" in response.json()["detail"]
    assert "ReBAC" in response.json()["detail"]


async def test_not_json_fault(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.not_json answers 200 text/html that no JSON parser accepts."""
    pdp.inject(Fault.not_json(), times=1)
    response = await client.post("/allowed", json=GOOD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html>Bad gateway</html>"
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


async def test_not_json_fault_with_another_status(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.not_json takes a status, body and content type."""
    pdp.inject(Fault.not_json(code=502, body="upstream gone", content_type="text/plain"), times=1)
    response = await client.post("/allowed/bulk", json=[GOOD])
    assert (response.status_code, response.text) == (502, "upstream gone")
    assert response.headers["content-type"] == "text/plain"


async def test_malformed_json_fault(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.malformed_json answers 200 application/json with a cut-off body."""
    pdp.inject(Fault.malformed_json(), times=1)
    response = await client.post("/allowed", json=GOOD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"allow": tru'
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


async def test_wrong_shape_fault(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.wrong_shape answers 200 with well-formed JSON that is not the PDP's answer."""
    pdp.inject(Fault.wrong_shape(), times=2)
    assert (await client.post("/allowed", json=GOOD)).json() == {"allowed": "yes"}
    assert (await client.post("/allowed/bulk", json=[GOOD])).json() == {"allowed": "yes"}
    pdp.inject(Fault.wrong_shape({"allow": "no"}), times=1)
    assert (await client.post("/allowed", json=GOOD)).json() == {"allow": "no"}


async def test_short_bulk_fault(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.short_bulk answers fewer answers than queries on bulk only; /allowed is untouched."""
    queries = [r.to_pdp_json() for r in REQUESTS[:4]]
    pdp.inject(Fault.short_bulk(missing=2))
    assert (await client.post("/allowed", json=queries[0])).json()["allow"] is True
    answers = (await client.post("/allowed/bulk", json=queries)).json()["allow"]
    assert [a["allow"] for a in answers] == [ENGINE.decide(r).allowed for r in REQUESTS[:2]]
    pdp.clear_faults()
    assert len((await client.post("/allowed/bulk", json=queries)).json()["allow"]) == 4


async def test_drop_fault_is_a_transport_error(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.drop closes the connection unanswered: httpx raises a transport error."""
    pdp.inject(Fault.drop(), times=1)
    with pytest.raises(httpx.TransportError):
        await client.post("/allowed", json=GOOD)
    assert (await client.post("/allowed", json=GOOD)).json()["allow"] is True
    assert pdp.requests == 2
    assert pdp.connections == 2  # the dropped connection could not be reused


async def test_delay_fault_exceeds_a_client_timeout(pdp: LocalPDP) -> None:
    """Fault.delay holds the answer past a 0.2 s client timeout."""
    pdp.inject(Fault.delay(3.0), times=1)
    async with httpx.AsyncClient(base_url=pdp.url, headers=AUTH, timeout=0.2) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/allowed", json=GOOD)
        assert time.monotonic() - started < 2.0
        response = await http.post("/allowed", json=GOOD)  # the fault is used up
    assert response.json()["allow"] is True


async def test_delay_fault_then_the_real_answer(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Fault.delay answers normally once the delay has passed."""
    pdp.inject(Fault.delay(0.3), times=1)
    started = time.monotonic()
    response = await client.post("/allowed", json=GOOD)
    assert time.monotonic() - started >= 0.3
    assert response.json()["allow"] is True


async def test_delay_keyword_of_other_faults(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """A fault's delay= waits before it acts."""
    pdp.inject(Fault.status(504, delay=0.3), times=1)
    started = time.monotonic()
    response = await client.post("/allowed", json=GOOD)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 504


async def test_fault_expires_after_times(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """A fault armed with times=N applies to the next N requests only."""
    pdp.inject(Fault.status(503), times=3)
    statuses = [(await client.post("/allowed", json=GOOD)).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]


async def test_fault_without_times_lasts_until_cleared(
    pdp: LocalPDP, client: httpx.AsyncClient
) -> None:
    """A fault armed without times applies until clear_faults()."""
    pdp.inject(Fault.status(503))
    statuses = [(await client.post("/allowed", json=GOOD)).status_code for _ in range(5)]
    pdp.clear_faults()
    statuses.append((await client.post("/allowed", json=GOOD)).status_code)
    assert statuses == [503] * 5 + [200]


async def test_earliest_armed_fault_applies_first(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """Each request meets the earliest armed fault; the next applies when it is used up."""
    pdp.inject(Fault.status(500), times=2)
    pdp.inject(Fault.status(503), times=1)
    statuses = [(await client.post("/allowed", json=GOOD)).status_code for _ in range(4)]
    assert statuses == [500, 500, 503, 200]


async def test_faults_spare_health_unless_named(pdp: LocalPDP, client: httpx.AsyncClient) -> None:
    """By default faults apply to the decision paths; paths= extends them to /health."""
    pdp.inject(Fault.status(503))
    assert (await client.get("/health")).status_code == 200
    pdp.clear_faults()
    pdp.inject(Fault.status(503, detail="unavailable"), paths=["/health"], times=1)
    assert (await client.post("/allowed", json=GOOD)).status_code == 200
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (503, {"detail": "unavailable"})


async def test_faults_act_before_the_key_is_checked(pdp: LocalPDP) -> None:
    """A faulty answer comes whatever the key, as from a proxy in front of the PDP."""
    pdp.inject(Fault.status(503), times=1)
    async with httpx.AsyncClient(base_url=pdp.url) as http:
        assert (await http.post("/allowed", json=GOOD)).status_code == 503
        assert (await http.post("/allowed", json=GOOD)).status_code == 401


def test_bad_fault_arguments_are_refused(pdp: LocalPDP) -> None:
    """Impossible faults and injections raise ValueError when they are built."""
    with pytest.raises(ValueError, match="error status"):
        Fault.status(200)
    with pytest.raises(ValueError, match="delay"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="delay"):
        Fault.drop(delay=float("nan"))
    with pytest.raises(ValueError, match="at least 1"):
        Fault.short_bulk(missing=0)
    with pytest.raises(ValueError, match="times"):
        pdp.inject(Fault.drop(), times=0)
    with pytest.raises(ValueError, match="start with '/'"):
        pdp.inject(Fault.drop(), paths=["allowed"])
    with pytest.raises(ValueError, match="none of the paths"):
        pdp.inject(Fault.short_bulk(), paths=["/allowed"])
    assert pdp.requests == 0


# -- lifecycle -------------------------------------------------------------------------------------


def test_sync_context_manager_starts_and_stops() -> None:
    """`with LocalPDP(...)` listens on a random loopback port and stops on exit."""
    server = LocalPDP(ENGINE)
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server as pdp:
        assert pdp is server
        assert pdp.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", pdp.url)
        assert httpx.get(f"{pdp.url}/health").json() == {"status": "ok"}
        url = pdp.url
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


async def test_async_context_manager_starts_and_stops() -> None:
    """`async with LocalPDP(...)` serves while the event loop keeps running, and stops on exit."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(1000):  # bounded
            await asyncio.sleep(0.01)
            ticks += 1

    async with LocalPDP(ENGINE, api_key="k2") as pdp:
        pdp.inject(Fault.delay(0.5), times=1)
        ticker = asyncio.create_task(tick())
        async with httpx.AsyncClient(base_url=pdp.url) as http:
            response = await http.post(
                "/allowed", json=GOOD, headers={"Authorization": "Bearer k2"}
            )
        ticker.cancel()
        assert response.json()["allow"] is True
        assert ticks >= 10  # the loop ran while the answer was delayed
        url = pdp.url
    assert not pdp.running
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/health")


def test_explicit_start_and_stop() -> None:
    """start() returns the running PDP; start twice is refused; stop is idempotent."""
    pdp = LocalPDP.from_dict(POLICY).start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            pdp.start()
        assert httpx.get(f"{pdp.url}/health").status_code == 200
    finally:
        pdp.stop()
    pdp.stop()
    assert not pdp.running


def test_restart_keeps_counters_and_faults() -> None:
    """A stopped PDP starts again (on a new port), with its counters and faults."""
    pdp = LocalPDP(ENGINE)
    with pdp:
        httpx.get(f"{pdp.url}/health")
        pdp.inject(Fault.status(503))
    with pdp:
        response = httpx.post(f"{pdp.url}/allowed", json=GOOD, headers=AUTH)
    assert response.status_code == 503
    assert pdp.requests_by_path == {"/health": 1, "/allowed": 1}


async def test_stop_is_prompt_while_a_delayed_request_is_in_flight(pdp: LocalPDP) -> None:
    """stop() returns within seconds while an answer is being delayed, dropping that request."""
    pdp.inject(Fault.delay(60.0))
    async with httpx.AsyncClient(base_url=pdp.url, headers=AUTH, timeout=30) as http:
        request = asyncio.create_task(http.post("/allowed", json=GOOD))
        for _ in range(200):  # bounded: until the request has arrived
            if pdp.requests:
                break
            await asyncio.sleep(0.01)
        assert pdp.requests == 1
        started = time.monotonic()
        await asyncio.to_thread(pdp.stop)
        assert time.monotonic() - started < 3.0
        with pytest.raises(httpx.TransportError):
            await asyncio.wait_for(request, timeout=5)


async def test_stop_closes_idle_keep_alive_connections(pdp: LocalPDP) -> None:
    """stop() closes idle keep-alive connections promptly instead of waiting for the client."""
    async with httpx.AsyncClient(base_url=pdp.url, headers=AUTH) as http:
        await http.get("/health")
        started = time.monotonic()
        await asyncio.to_thread(pdp.stop)
        assert time.monotonic() - started < 3.0
        with pytest.raises(httpx.TransportError):
            await http.get("/health")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "localhost", "example.com"])
def test_only_loopback_hosts(host: str) -> None:
    """A host that is not a loopback IP address is refused."""
    with pytest.raises(ValueError, match="loopback"):
        LocalPDP(ENGINE, host=host)


def test_empty_api_key_is_refused() -> None:
    """An empty api_key is refused: every client would then be let in."""
    with pytest.raises(ValueError, match="api_key"):
        LocalPDP(ENGINE, api_key="")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_loopback() -> None:
    """host="::1" serves on the IPv6 loopback, with a bracketed URL."""
    with LocalPDP(ENGINE, host="::1") as pdp:
        assert pdp.url.startswith("http://[::1]:")
        assert httpx.post(f"{pdp.url}/allowed", json=GOOD, headers=AUTH).json()["allow"] is True


def test_from_file() -> None:
    """LocalPDP.from_file decides with the policy in the file."""
    with LocalPDP.from_file(ROOT / "tests" / "policies" / "billing.yaml") as pdp:
        assert pdp.engine.source.endswith("billing.yaml")
        assert httpx.get(f"{pdp.url}/health").status_code == 200


# -- the permit SDK ------------------------------------------------------------------------------


async def test_sdk_check_and_bulk_check_agree_with_the_engine(pdp: LocalPDP) -> None:
    """permit.Permit's check and bulk_check get the engine's booleans from LocalPDP."""
    permit = import_permit()(token=KEY, pdp=pdp.url)
    for request in REQUESTS:
        resource = {
            "type": request.resource.type,
            "tenant": request.resource.tenant,
            "attributes": dict(request.resource.attributes),
        }
        if request.resource.key is not None:
            resource["key"] = request.resource.key
        user = {"key": request.user.key, "attributes": dict(request.user.attributes)}
        allowed = await permit.check(user, request.action, resource)
        assert allowed is ENGINE.decide(request).allowed
    checks = [
        {"user": "alice", "action": "refund", "resource": "mcp_server"},
        {"user": "bob", "action": "refund", "resource": "mcp_server"},
        {"user": "carol", "action": "read", "resource": "invoice:42"},
        {"user": "carol", "action": "read", "resource": "invoice:43"},
        {"user": "bob", "action": "refund", "resource": {"type": "mcp_server", "tenant": "acme"}},
    ]
    assert await permit.bulk_check(checks) == [True, False, True, False, True]
    assert pdp.connections == len(REQUESTS) + 1  # the SDK opens a session per call


async def test_what_the_sdk_sends(pdp: LocalPDP) -> None:
    """The SDK defaults the tenant, copies it into resource.context and renames firstName."""
    permit = import_permit()(token=KEY, pdp=pdp.url)
    await permit.check({"key": "bob", "firstName": "Bob"}, "read", "invoice:42")
    await permit.check("bob", "greet", "mcp_server", context={"ip": "127.0.0.1"})
    first, second = pdp.bodies
    assert first == {
        "user": {"key": "bob", "first_name": "Bob"},
        "action": "read",
        "resource": {
            "type": "invoice",
            "key": "42",
            "tenant": "default",
            "context": {"tenant": "default"},
        },
        "context": {},
    }
    assert second["resource"]["key"] is None
    assert second["context"] == {"ip": "127.0.0.1"}


async def test_sdk_takes_a_short_bulk_answer_silently(pdp: LocalPDP) -> None:
    """The SDK returns a short bulk answer as is: a client must check the length itself."""
    permit = import_permit()(token=KEY, pdp=pdp.url)
    pdp.inject(Fault.short_bulk(), times=1)
    checks = [{"user": "alice", "action": "refund", "resource": "mcp_server"}] * 3
    assert await permit.bulk_check(checks) == [True, True]


def test_docs_examples_run() -> None:
    """Every Python example in docs/testing.md runs as it stands."""
    text = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    for index, block in enumerate(blocks):
        code = compile(block, f"docs/testing.md, example {index + 1}", "exec")
        exec(code, {"__name__": f"docs_testing_example_{index + 1}"})
