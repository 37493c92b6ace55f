"""AuthZENEngine over real loopback HTTP against LocalPDP's AuthZEN endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fastmcp import Client, FastMCP

from permit_guard import (
    AuthZENEngine,
    AuthzRequest,
    ConfigurationError,
    EngineError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PolicyEngine,
    Principal,
    Resource,
    public,
)
from permit_guard.engines import Closable
from permit_guard.testing import Fault, LocalPDP

from .conftest import POLICY, Caller, build_server
from .test_pdp_engine import SCENARIOS

KEY = "permit_key_FAKE_for_tests"
WELL_KNOWN = "/.well-known/authzen-configuration"
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"


@pytest.fixture
async def pdp() -> AsyncIterator[LocalPDP]:
    """A LocalPDP on the shared test policy."""
    async with LocalPDP.from_dict(POLICY, api_key=KEY) as server:
        yield server


@pytest.fixture
async def engine(pdp: LocalPDP) -> AsyncIterator[AuthZENEngine]:
    """An AuthZENEngine on that PDP, closed afterwards."""
    async with AuthZENEngine(pdp.url, token=KEY, timeout=2) as built:
        yield built


def _request(
    user: str = "alice", action: str = "greet", key: str | None = None, **attributes: Any
) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type="mcp_server", key=key, attributes=attributes),
    )


def metadata(pdp: LocalPDP, base: str | None = None, **fields: Any) -> Fault:
    """The PDP's metadata answer, naming ``pdp`` and pointing wherever ``fields`` say."""
    body = {
        "policy_decision_point": pdp.url,
        "access_evaluation_endpoint": (base or pdp.url) + EVALUATION,
        "access_evaluations_endpoint": (base or pdp.url) + EVALUATIONS,
        **fields,
    }
    return Fault.wrong_shape({k: v for k, v in body.items() if v is not None})


# ------------------------------------------------------------------ decisions


async def test_engine_agrees_with_the_embedded_engine(pdp: LocalPDP) -> None:
    """Through a guarded server, AuthZENEngine decides every core scenario as the others do."""
    caller = Caller()
    mcp = build_server()
    outcomes = []
    async with AuthZENEngine(pdp.url, token=KEY) as engine, Client(mcp) as client:
        mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
        caller.key = "carol"
        listed = sorted(t.name for t in await client.list_tools())
        for user, tool, arguments, _ in SCENARIOS:
            caller.key = user
            result = await client.call_tool(tool, arguments, raise_on_error=False)
            outcomes.append(not result.is_error)
    assert outcomes == [allowed for *_, allowed in SCENARIOS]
    assert listed == ["delete_invoice", "greet", "health", "refund"]
    assert pdp.errors == []


async def test_a_list_is_one_evaluations_request(pdp: LocalPDP) -> None:
    """tools/list is one POST /access/v1/evaluations whatever the number of tools."""
    mcp = build_server()
    engine = AuthZENEngine(pdp.url, token=KEY)
    mcp.add_middleware(PermitMcpMiddleware(engine=engine))
    async with engine, Client(mcp) as client:
        await engine.endpoints()
        pdp.reset()
        await client.list_tools()
    assert pdp.requests_by_path == {EVALUATIONS: 1}
    assert len(pdp.bodies[0]["evaluations"]) == 5


async def test_the_request_on_the_wire(engine: AuthZENEngine, pdp: LocalPDP) -> None:
    """Subject, action, resource (tenant in its properties) and context, as Permit reads them."""
    request = AuthzRequest(
        user=Principal(key="acme-bob", attributes={"department": "finance"}),
        action="delete",
        resource=Resource(type="invoice", key="7", tenant="acme", attributes={"arg_org": "acme"}),
        context={"mcp_client": "tests"},
    )
    decision = await engine.check(request)
    assert decision.allowed  # acme-bob is an admin in acme only: the tenant arrived
    assert (
        decision.reason
        == "AuthZEN PDP allowed: role 'admin' grants invoice:delete in tenant 'acme'"
    )
    assert pdp.bodies[-1] == {
        "subject": {"type": "user", "id": "acme-bob", "properties": {"department": "finance"}},
        "action": {"name": "delete"},
        "resource": {
            "type": "invoice",
            "id": "7",
            "properties": {"arg_org": "acme", "tenant": "acme"},
        },
        "context": {"mcp_client": "tests"},
    }
    other = await engine.check(_request("acme-bob", "delete"))  # no key: a type-level check
    assert pdp.bodies[-1]["resource"] == {
        "type": "mcp_server",
        "properties": {"tenant": "default"},
    }
    assert not other.allowed


async def test_a_batch_sends_what_its_items_share_once(
    engine: AuthZENEngine, pdp: LocalPDP
) -> None:
    """Equal subjects and actions go top level as the spec's defaults; others stay per item."""
    same = await engine.check_many([_request("carol", "refund", arg_amount=n) for n in (5, 500)])
    assert [d.allowed for d in same] == [True, False]
    body = pdp.bodies[-1]
    assert body["subject"] == {"type": "user", "id": "carol"}
    assert body["action"] == {"name": "refund"}
    assert body["options"] == {"evaluations_semantic": "execute_all"}
    assert [set(item) for item in body["evaluations"]] == [{"resource"}, {"resource"}]
    mixed = await engine.check_many([_request("alice", "refund"), _request("lee", "greet")])
    assert [d.allowed for d in mixed] == [True, True]
    assert "subject" not in pdp.bodies[-1]
    assert [set(item) for item in pdp.bodies[-1]["evaluations"]] == [
        {"subject", "action", "resource"}
    ] * 2


async def test_large_lists_are_split_only_above_the_batch_size(pdp: LocalPDP) -> None:
    """check_many splits into batches of batch_size and keeps the order."""
    requests = [_request(user) for user in ("alice", "nobody", "carol", "nobody", "lee")]
    async with AuthZENEngine(pdp.url, token=KEY, batch_size=2, discovery=False) as engine:
        decisions = await engine.check_many(requests)
        assert await engine.check_many([]) == []
    assert [d.allowed for d in decisions] == [True, False, True, False, True]
    assert pdp.requests_by_path == {EVALUATIONS: 3}


async def test_a_resource_attribute_named_tenant_must_match_the_tenant(
    engine: AuthZENEngine, pdp: LocalPDP
) -> None:
    """An attribute 'tenant' other than the request's would move the decision: refused."""
    with pytest.raises(EngineError, match="resource attribute 'tenant'"):
        await engine.check(_request(tenant="acme"))
    assert (await engine.check(_request(tenant="default"))).allowed
    assert pdp.requests_by_path.get(EVALUATION) == 1


# ------------------------------------------------------------------ discovery


async def test_discovery_runs_once(pdp: LocalPDP) -> None:
    """The metadata is read once, even by concurrent first checks, and names the endpoints."""
    async with AuthZENEngine(pdp.url, token=KEY) as engine:
        await asyncio.gather(*(engine.check(_request()) for _ in range(10)))
        await engine.check_many([_request(), _request("lee")])
        endpoints = await engine.endpoints()
    assert endpoints.discovered
    assert endpoints.evaluations == pdp.url + EVALUATIONS
    assert pdp.requests_by_path == {WELL_KNOWN: 1, EVALUATION: 10, EVALUATIONS: 1}


async def test_advertised_endpoints_are_used(pdp: LocalPDP) -> None:
    """Endpoints the metadata names are where the checks go, even on another server."""
    async with LocalPDP.from_dict(POLICY, api_key=KEY) as other:
        pdp.inject(metadata(pdp, base=other.url), paths=[WELL_KNOWN])
        async with AuthZENEngine(pdp.url, token=KEY) as engine:
            assert (await engine.check(_request())).allowed
            assert [d.allowed for d in await engine.check_many([_request(), _request("x")])] == [
                True,
                False,
            ]
        assert other.requests_by_path == {EVALUATION: 1, EVALUATIONS: 1}
    assert pdp.requests_by_path == {WELL_KNOWN: 1}


async def test_without_a_batch_endpoint_lists_go_one_by_one(pdp: LocalPDP) -> None:
    """Metadata without access_evaluations_endpoint: a list is one evaluation per item."""
    pdp.inject(metadata(pdp, access_evaluations_endpoint=None), paths=[WELL_KNOWN])
    async with AuthZENEngine(pdp.url, token=KEY) as engine:
        decisions = await engine.check_many([_request(), _request("nobody"), _request("lee")])
    assert [d.allowed for d in decisions] == [True, False, True]
    assert pdp.requests_by_path == {WELL_KNOWN: 1, EVALUATION: 3}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"policy_decision_point": "http://pdp.example.com"}, "names another PDP"),
        ({"access_evaluation_endpoint": "ftp://x/access"}, "access_evaluation_endpoint"),
        ({"access_evaluation_endpoint": None}, "access_evaluation_endpoint"),
    ],
)
async def test_unusable_metadata_falls_back_to_the_default_paths(
    pdp: LocalPDP, caplog: pytest.LogCaptureFixture, fields: dict[str, Any], problem: str
) -> None:
    """Metadata that names another PDP or no usable endpoint is not used; a warning says so."""
    pdp.inject(metadata(pdp, **fields), paths=[WELL_KNOWN])
    with caplog.at_level(logging.WARNING, "permit_guard.engines.authzen"):
        async with AuthZENEngine(pdp.url, token=KEY) as engine:
            assert (await engine.check(_request())).allowed
            assert not (await engine.endpoints()).discovered
    assert problem in caplog.text
    assert "using the default paths" in caplog.text
    assert pdp.requests_by_path == {WELL_KNOWN: 1, EVALUATION: 1}


async def test_no_metadata_means_the_default_paths(pdp: LocalPDP) -> None:
    """A PDP that publishes no metadata (404) is asked at the spec's default paths."""
    pdp.inject(Fault.status(404), paths=[WELL_KNOWN])
    async with AuthZENEngine(pdp.url, token=KEY) as engine:
        assert (await engine.check(_request())).allowed
        assert (await engine.endpoints()).evaluation == pdp.url + EVALUATION
    async with AuthZENEngine(pdp.url, token=KEY, discovery=False) as engine:
        assert (await engine.check(_request())).allowed
    assert pdp.requests_by_path == {WELL_KNOWN: 1, EVALUATION: 2}


async def test_a_failed_discovery_denies_and_is_tried_again(pdp: LocalPDP) -> None:
    """A metadata request that fails is an EngineError; the next check discovers afresh."""
    pdp.inject(Fault.status(503), times=1, paths=[WELL_KNOWN])
    async with AuthZENEngine(pdp.url, token=KEY) as engine:
        with pytest.raises(EngineError, match=r"authzen-configuration\) answered HTTP 503"):
            await engine.check(_request())
        assert (await engine.check(_request())).allowed
    assert pdp.requests_by_path == {WELL_KNOWN: 2, EVALUATION: 1}


# ------------------------------------------------------------ strict reading


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "true"},
        {"decision": 1},
        {"allow": True},
        [{"decision": True}],
        {"decision": True, "context": "ok"},
        {"decision": True, "context": {"error": {"status": 500}}},
    ],
)
async def test_anything_but_a_boolean_decision_is_an_error(
    engine: AuthZENEngine, pdp: LocalPDP, body: Any
) -> None:
    """A decision that is not a real boolean, or an allow reporting an error, is an EngineError."""
    await engine.endpoints()
    pdp.inject(Fault.wrong_shape(body))
    with pytest.raises(EngineError, match=r"\(/access/v1/evaluation\) answered"):
        await engine.check(_request())


async def test_a_denial_with_an_error_is_a_denial(engine: AuthZENEngine, pdp: LocalPDP) -> None:
    """{"decision": false} with an error in its context denies and names the error."""
    await engine.endpoints()
    pdp.inject(Fault.wrong_shape({"decision": False, "context": {"error": {"status": 404}}}))
    decision = await engine.check(_request())
    assert not decision.allowed
    assert decision.reason == 'AuthZEN PDP denied: error {"status": 404}'


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.short_bulk(), "answered 1 decisions for 2 evaluations"),
        (Fault.wrong_shape({"evaluations": [{"decision": True}] * 3}), "answered 3 decisions"),
        (Fault.wrong_shape({"decision": True}), "unexpected shape"),
        (Fault.wrong_shape({"evaluations": [{"decision": True}, {}]}), "unexpected shape"),
    ],
)
async def test_a_batch_answer_of_the_wrong_count_or_shape_is_an_error(
    engine: AuthZENEngine, pdp: LocalPDP, fault: Fault, message: str
) -> None:
    """No partial answer: too few, too many or malformed decisions fail the whole list."""
    await engine.endpoints()
    pdp.inject(fault, paths=[EVALUATIONS])
    with pytest.raises(EngineError, match=message):
        await engine.check_many([_request(), _request("lee")])


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.status(500), "answered HTTP 500"),
        (Fault.not_json(), r"not JSON \(text/html\)"),
        (Fault.malformed_json(), "not JSON"),
        (Fault.delay(1.0), "did not answer within 0.3s"),
        (Fault.drop(), "could not be reached"),
    ],
)
async def test_transport_failures_are_engine_errors(
    pdp: LocalPDP, fault: Fault, message: str
) -> None:
    """Statuses, bodies that are not JSON, timeouts and dropped connections all fail closed."""
    async with AuthZENEngine(pdp.url, token=KEY, timeout=0.3, discovery=False) as engine:
        pdp.inject(fault, times=1)
        with pytest.raises(EngineError, match=message):
            await engine.check(_request())
        assert (await engine.check(_request())).allowed


async def test_a_wrong_token_is_named(pdp: LocalPDP) -> None:
    """The PDP's 403 for a wrong key says which setting to check."""
    async with AuthZENEngine(pdp.url, token="wrong", discovery=False) as engine:
        with pytest.raises(EngineError, match=r"HTTP 403: .*PERMIT_MCP_AUTHZEN_TOKEN"):
            await engine.check(_request())


async def test_an_unreachable_pdp_denies_and_the_server_keeps_serving() -> None:
    """With nothing listening, guarded calls are denied and @public ones still answer."""
    guard = PermitMcpMiddleware(
        engine=AuthZENEngine("http://127.0.0.1:9", timeout=1), identity=Caller("alice")
    )
    mcp = build_server()
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        denied = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
        assert denied.is_error
        assert "not found or not authorized" in str(denied.content)
        assert (await client.call_tool("health", {})).data == "ok"
    await guard.aclose()


# ------------------------------------------------------- engine and settings


def test_it_is_a_closable_policy_engine() -> None:
    """AuthZENEngine implements PolicyEngine and Closable, and names itself authzen."""
    engine = AuthZENEngine("http://localhost:7766/", token="k")
    assert isinstance(engine, PolicyEngine)
    assert isinstance(engine, Closable)
    assert engine.name == "authzen"
    assert engine.url == "http://localhost:7766"
    assert "k" not in repr(engine)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "localhost:7766"}, "must start with http"),
        ({"url": "http://pdp?tenant=a"}, "no query or fragment"),
        ({"url": "http://pdp", "timeout": 0}, "timeout must be positive"),
        ({"url": "http://pdp", "batch_size": 0}, "at least 1"),
        ({"url": "http://pdp", "subject_type": ""}, "subject_type"),
        (
            {"url": "http://pdp", "token": "k", "headers": {"authorization": "Basic x"}},
            "both token= and an Authorization header",
        ),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    """Each unusable argument is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=message):
        AuthZENEngine(**kwargs)


async def test_headers_replace_the_token(pdp: LocalPDP) -> None:
    """headers= sends any Authorization scheme; the PDP sees exactly that header."""
    headers = {"Authorization": f"Bearer {KEY}", "X-Tenant": "a"}
    async with AuthZENEngine(pdp.url, headers=headers, discovery=False) as engine:
        assert (await engine.check(_request())).allowed


async def test_lifespan_closes_the_pool(pdp: LocalPDP) -> None:
    """guard.lifespan closes the engine's connections when the server stops."""
    engine = AuthZENEngine(pdp.url, token=KEY)
    guard = PermitMcpMiddleware(engine=engine, identity=Caller("alice"))
    mcp: FastMCP[Any] = FastMCP("s", lifespan=guard.lifespan)

    @mcp.tool
    @public
    def ping() -> str:
        return "pong"

    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        await client.list_tools()
        assert engine._http is not None
        assert not engine._http.closed
    assert engine._http is None


async def test_concurrent_checks_share_a_small_pool(pdp: LocalPDP) -> None:
    """50 concurrent checks are answered over at most max_connections connections."""
    async with AuthZENEngine(pdp.url, token=KEY, max_connections=3) as engine:
        decisions = await asyncio.gather(*(engine.check(_request()) for _ in range(50)))
    assert all(d.allowed for d in decisions)
    assert pdp.connections <= 3


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No PERMIT_MCP_ variable or .env file leaks in."""
    for name in list(os.environ):
        if name.startswith("PERMIT_MCP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


async def test_settings_build_the_engine(pdp: LocalPDP, environment: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_AUTHZEN_URL and _TOKEN (with the PDP timeout) make the guard ask over AuthZEN."""
    environment.setenv("PERMIT_MCP_AUTHZEN_URL", pdp.url)
    environment.setenv("PERMIT_MCP_AUTHZEN_TOKEN", KEY)
    environment.setenv("PERMIT_MCP_PDP_TIMEOUT", "2.5")
    guard = PermitMcpMiddleware(identity=Caller("carol"))
    assert isinstance(guard.engine, AuthZENEngine)
    assert guard.engine.timeout == 2.5
    mcp = build_server()
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        assert (await client.call_tool("greet", {"name": "x"})).data == "hello x"
        assert (await client.call_tool("refund", {"amount": 500}, raise_on_error=False)).is_error
    await guard.aclose()
    assert pdp.requests_by_path[EVALUATION] == 2


def test_settings_choose_one_engine(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An AuthZEN URL beside a Permit key is refused with the fix; a keyword choice wins."""
    environment.setenv("PERMIT_MCP_AUTHZEN_URL", "http://localhost:7766")
    environment.setenv("PERMIT_MCP_PERMIT_API_KEY", KEY)
    with pytest.raises(ConfigurationError, match="give its API key as PERMIT_MCP_AUTHZEN_TOKEN"):
        PermitMcpMiddleware()
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    chosen = PermitMcpMiddleware(policy_file=str(policy)).engine
    assert isinstance(chosen, LocalPolicyEngine)


# ------------------------------------------------- LocalPDP's AuthZEN errors


async def _post(
    pdp: LocalPDP, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(pdp.url + path, data=body, headers=headers) as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


JSON = {"Content-Type": "application/json"}
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "text"),
    [
        (EVALUATION, b"{}", JSON, 401, "Missing Authorization header"),
        (EVALUATION, b"{}", {**JSON, "Authorization": "Bearer no"}, 403, "check your API key"),
        (EVALUATION, b"{}", {**JSON, "Authorization": KEY}, 403, "check your API key"),
        (EVALUATION, b"{}", BEARER, 415, "Content-Type: application/json"),
        (EVALUATION, b"{", {**BEARER, **JSON}, 400, "Failed to parse the request body as JSON"),
        (EVALUATION, b'{"subject": {"id": "a"}}', {**BEARER, **JSON}, 422, "missing field `type`"),
        (EVALUATIONS, b'{"evaluations": []}', {**BEARER, **JSON}, 400, "No evaluations provided"),
        (
            EVALUATIONS,
            b'{"evaluations": [{"resource": {"type": "t"}}]}',
            {**BEARER, **JSON},
            400,
            "position 0: missing subject, action",
        ),
    ],
)
async def test_local_pdp_answers_authzen_errors_as_permits_pdp_does(
    pdp: LocalPDP, path: str, body: bytes, headers: dict[str, str], status: int, text: str
) -> None:
    """Authentication first, then content type, syntax and shape; plain-text bodies."""
    got_status, content_type, got_text = await _post(pdp, path, body, headers)
    assert (got_status, content_type.split(";")[0]) == (status, "text/plain")
    assert text in got_text
    assert pdp.errors == []


async def test_local_pdp_merges_batch_defaults_as_permits_pdp_does(pdp: LocalPDP) -> None:
    """Top-level subject, action and context are defaults each item may override."""
    body = {
        "subject": {"type": "user", "id": "carol"},
        "action": {"name": "refund"},
        "context": {"a": 1},
        "evaluations": [
            {"resource": {"type": "mcp_server", "properties": {"arg_amount": 5}}},
            {"resource": {"type": "mcp_server", "properties": {"arg_amount": 500}}},
            {"action": {"name": "greet"}, "resource": {"type": "mcp_server"}, "context": {"b": 2}},
        ],
    }
    status, _, text = await _post(pdp, EVALUATIONS, json.dumps(body).encode(), {**BEARER, **JSON})
    assert status == 200
    assert [item["decision"] for item in json.loads(text)["evaluations"]] == [True, False, True]
