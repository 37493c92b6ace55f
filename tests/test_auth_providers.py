"""FastMCP auth providers and ``@public``: OptionalAuth over streamable HTTP, and the start warning.

The billing server runs under uvicorn on 127.0.0.1 with FastMCP's own
``JWTVerifier``; clients are real ``fastmcp.Client`` instances, or raw HTTP
where the status code is the point (a 401 never reaches the MCP layer).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.auth import AuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from mcp import MCPError

from permit_guard import (
    ConfigurationError,
    LocalPolicyEngine,
    OptionalAuth,
    PermitMcpMiddleware,
)
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, build_server
from .keys import OTHER_RSA_KEY, RSA_KEY, PrivateKey, claims, public_pem, sign
from .serving import serve_http

NO_CREDENTIALS = "Authentication failed: invalid or missing credentials"
AUDIENCE = "billing-mcp"
ISSUER = "https://issuer.test"
OLD_PROTOCOL = "2025-06-18"


# -- helpers -----------------------------------------------------------------------------------


def verifier(**options: Any) -> JWTVerifier:
    """FastMCP's verifier for RS256 tokens of the test issuer and audience."""
    return JWTVerifier(public_key=public_pem(RSA_KEY), issuer=ISSUER, audience=AUDIENCE, **options)


def token(key: PrivateKey = RSA_KEY, **overrides: Any) -> str:
    """A valid RS256 token for ``alice`` (or what ``overrides`` say), signed with ``key``."""
    payload = claims(**{"aud": AUDIENCE, "iss": ISSUER, **overrides})
    return sign(payload, key, algorithm="RS256")


def bearer(value: str) -> dict[str, str]:
    """The Authorization header carrying ``value`` as a bearer token."""
    return {"Authorization": f"Bearer {value}"}


def token_guard(engine: RecordingEngine, **options: Any) -> PermitMcpMiddleware:
    """The guard in token mode on the recorded local engine."""
    return PermitMcpMiddleware(engine=engine, identity_mode="token", **options)


@pytest.fixture
def engine() -> RecordingEngine:
    """The local engine on the shared policy, recording every call."""
    return RecordingEngine(LocalPolicyEngine.from_dict(POLICY))


@contextlib.asynccontextmanager
async def served(
    auth: AuthProvider | None, guard: PermitMcpMiddleware | None
) -> AsyncIterator[str]:
    """The billing server with ``auth`` and ``guard`` (if any), on loopback; its MCP URL."""
    mcp = build_server()
    mcp.auth = auth
    if guard is not None:
        guard.attach(mcp)
    async with serve_http(mcp) as url:
        yield url


def client(url: str, headers: dict[str, str] | None = None) -> Client[Any]:
    """A FastMCP client over streamable HTTP sending ``headers`` on every request."""
    return Client(StreamableHttpTransport(url, headers=headers or {}))


async def initialize(
    url: str, headers: dict[str, str], *, session: str | None = None
) -> httpx.Response:
    """POST an old-protocol ``initialize`` (or, with ``session``, a tools/list in it)."""
    routing = {"accept": "application/json, text/event-stream", **headers}
    if session is None:
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": OLD_PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        }
    else:
        routing |= {"mcp-session-id": session, "mcp-protocol-version": OLD_PROTOCOL}
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, headers=routing, json=body)


# -- OptionalAuth ------------------------------------------------------------------------------


async def test_tokenless_caller_reaches_public_components_only(engine: RecordingEngine) -> None:
    """Without a token a caller lists and uses the @public components, and nothing else."""
    async with (
        served(OptionalAuth(verifier()), token_guard(engine)) as url,
        client(url) as anonymous,
    ):
        tools = sorted(tool.name for tool in await anonymous.list_tools())
        resources = [str(r.uri) for r in await anonymous.list_resources()]
        prompts = [prompt.name for prompt in await anonymous.list_prompts()]
        health = await anonymous.call_tool("health", {})
        opened = await anonymous.read_resource("data://open")
        greet = await anonymous.call_tool("greet", {"name": "x"}, raise_on_error=False)
        unknown = await anonymous.call_tool("no_such_tool", {}, raise_on_error=False)
        with pytest.raises(MCPError) as config:
            await anonymous.read_resource("data://config")
    assert tools == ["health"]
    assert resources == ["data://open"]
    assert prompts == ["help_prompt"]
    assert health.data == "ok"
    assert opened[0].text == "open"
    assert greet.is_error
    assert unknown.is_error
    assert greet.content[0].text == unknown.content[0].text == NO_CREDENTIALS
    assert NO_CREDENTIALS in str(config.value)
    assert engine.calls == []


async def test_valid_token_is_verified_as_before(engine: RecordingEngine) -> None:
    """A caller with a valid token is the token's subject, decided by the policy as before."""
    async with served(OptionalAuth(verifier()), token_guard(engine)) as url:
        async with client(url, bearer(token(sub="alice"))) as alice:
            refund = await alice.call_tool("refund", {"amount": 500})
            tools = sorted(tool.name for tool in await alice.list_tools())
        async with client(url, bearer(token(sub="carol"))) as carol:
            denied = await carol.call_tool("refund", {"amount": 500}, raise_on_error=False)
    assert refund.data == "refunded 500.0"
    assert {"refund", "greet", "health"} <= set(tools)
    assert denied.is_error
    assert "not found or not authorized" in denied.content[0].text
    assert {request.user.key for request in engine.requests} == {"alice", "carol"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(bearer("not.a.jwt"), id="garbage"),
        pytest.param(bearer(token(exp=1_000)), id="expired"),
        pytest.param(bearer(token(aud="another-service")), id="wrong-audience"),
        pytest.param(bearer(token(key=OTHER_RSA_KEY)), id="signed-by-another-key"),
        pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
        pytest.param({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, id="another-scheme"),
        pytest.param({"Authorization": ""}, id="empty-header"),
    ],
)
async def test_credentials_that_fail_get_401_not_anonymous(
    engine: RecordingEngine, headers: dict[str, str]
) -> None:
    """Credentials that are sent but do not verify are refused with 401, never taken as none."""
    async with served(OptionalAuth(verifier()), token_guard(engine)) as url:
        response = await initialize(url, headers)
        with pytest.raises(MCPError):
            async with client(url, headers) as caller:
                await caller.call_tool("health", {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert engine.calls == []


async def test_required_scopes_still_bind_tokens(engine: RecordingEngine) -> None:
    """A provider's required scopes still refuse a token without them; no token gets @public."""
    auth = OptionalAuth(verifier(required_scopes=["billing"]))
    async with served(auth, token_guard(engine)) as url:
        unscoped = await initialize(url, bearer(token()))
        async with client(url, bearer(token(scope="billing"))) as scoped:
            refund = await scoped.call_tool("refund", {"amount": 500})
        async with client(url) as anonymous:
            health = await anonymous.call_tool("health", {})
    assert unscoped.status_code == 401
    assert (refund.data, health.data) == ("refunded 500.0", "ok")


async def test_a_session_stays_with_the_credential_that_opened_it(engine: RecordingEngine) -> None:
    """A tokenless request cannot use a token's session, nor a token a tokenless session."""
    async with served(OptionalAuth(verifier()), token_guard(engine)) as url:
        with_token = await initialize(url, bearer(token()))
        without = await initialize(url, {})
        token_session = with_token.headers["mcp-session-id"]
        tokenless_session = without.headers["mcp-session-id"]
        hijack = await initialize(url, {}, session=token_session)
        upgrade = await initialize(url, bearer(token()), session=tokenless_session)
        own = await initialize(url, bearer(token()), session=token_session)
    assert (with_token.status_code, without.status_code) == (200, 200)
    assert (hijack.status_code, upgrade.status_code) == (404, 404)
    assert own.status_code == 200


async def test_without_optional_auth_a_tokenless_caller_gets_401(engine: RecordingEngine) -> None:
    """A bare FastMCP provider answers 401 to a caller without a token: @public is unreachable."""
    async with served(verifier(), token_guard(engine)) as url:
        response = await initialize(url, {})
        with pytest.raises(MCPError):
            async with client(url) as anonymous:
                await anonymous.call_tool("health", {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert engine.calls == []


@pytest.mark.parametrize(
    ("guard", "logged"),
    [
        pytest.param(None, "has no PermitMcpMiddleware", id="no-guard"),
        pytest.param(
            lambda engine: PermitMcpMiddleware(engine=engine),
            "does not identify callers by their token",
            id="fixed-identity",
        ),
    ],
)
async def test_tokenless_callers_get_401_where_no_guard_reads_tokens(
    engine: RecordingEngine, caplog: pytest.LogCaptureFixture, guard: Any, logged: str
) -> None:
    """OptionalAuth fails closed with no guard, or one that takes a tokenless caller for a user."""
    with caplog.at_level(logging.ERROR, logger="permit_guard"):
        async with served(OptionalAuth(verifier()), guard and guard(engine)) as url:
            first = await initialize(url, {})
            second = await initialize(url, {})
            with_token = await initialize(url, bearer(token()))
    errors = [r.getMessage() for r in caplog.records if r.name == "permit_guard"]
    assert (first.status_code, second.status_code, with_token.status_code) == (401, 401, 200)
    assert len(errors) == 1
    assert logged in errors[0]


async def test_sse_keeps_fastmcp_401() -> None:
    """On the SSE transport OptionalAuth lets nothing through without a token."""
    mcp = build_server()
    mcp.auth = OptionalAuth(verifier())
    token_guard(RecordingEngine(LocalPolicyEngine.from_dict(POLICY))).attach(mcp)
    app = mcp.http_app(transport="sse")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/sse", headers={"accept": "text/event-stream"})
    assert response.status_code == 401


def test_optional_auth_is_the_provider_but_for_the_route() -> None:
    """OptionalAuth reads everything from its provider, unwraps itself, refuses a non-provider."""
    inner = verifier(required_scopes=["billing"])
    auth = OptionalAuth(OptionalAuth(inner))
    assert auth.provider is inner
    assert auth.required_scopes == ["billing"]
    assert auth.jwks_uri is inner.jwks_uri  # the provider's own attributes too
    assert [type(m.cls) for m in auth.get_middleware()] == [
        type(m.cls) for m in inner.get_middleware()
    ]
    with pytest.raises(ConfigurationError, match="wraps a FastMCP auth provider"):
        OptionalAuth("a token")  # type: ignore[arg-type]


# -- token mode without an auth provider -----------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING messages of the permit_guard logger about a missing auth provider."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "permit_guard" and "no auth provider" in record.getMessage()
    ]


async def test_token_mode_without_a_provider_warns_once_at_start(
    engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Token mode on a server without an auth provider warns once when attached, not per request."""
    mcp = build_server()
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        token_guard(engine).attach(mcp)
        at_start = warnings_of(caplog)
        async with Client(mcp) as caller:
            for _ in range(3):
                await caller.call_tool("health", {})
                await caller.list_tools()
    assert len(at_start) == 1
    assert "'billing'" in at_start[0]
    assert "FastMCP(auth=...)" in at_start[0]
    assert warnings_of(caplog) == at_start


async def test_token_mode_added_without_attach_warns_at_its_first_request(
    engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A guard added with add_middleware warns when the server first reaches it, and only then."""
    mcp = build_server()
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        mcp.add_middleware(token_guard(engine))
        before = warnings_of(caplog)
        async with Client(mcp) as caller:
            await caller.list_tools()
            first = warnings_of(caplog)
            await caller.call_tool("health", {})
            await caller.list_tools()
    assert before == []
    assert len(first) == 1
    assert warnings_of(caplog) == first


@pytest.mark.parametrize(
    ("auth", "mode"),
    [
        pytest.param(verifier, "token", id="token-with-provider"),
        pytest.param(lambda: OptionalAuth(verifier()), "token", id="token-with-optional-auth"),
        pytest.param(lambda: None, "fixed", id="fixed-without-provider"),
    ],
)
async def test_no_provider_warning_where_it_does_not_apply(
    engine: RecordingEngine, caplog: pytest.LogCaptureFixture, auth: Any, mode: str
) -> None:
    """Nothing is warned with a provider, or in a mode that does not read FastMCP's token."""
    mcp = build_server()
    mcp.auth = auth()
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        PermitMcpMiddleware(engine=engine, identity_mode=mode).attach(mcp)
        async with Client(mcp) as caller:
            await caller.list_tools()
    assert warnings_of(caplog) == []
