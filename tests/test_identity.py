"""Identity over streamable HTTP: every mode, attacks on tokens, JWKS rotation, many users.

Each test runs the billing server under uvicorn on 127.0.0.1 and talks to it
with a real ``fastmcp.Client`` (or, where the client cannot send what an
attacker would, with raw JSON-RPC over ``httpx``). The engine is the local
engine on the shared policy, recorded, so "no engine call" can be asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import mcp_types
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.auth import AuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import MiddlewareContext
from mcp import MCPError

from permit_guard import (
    ConfigurationError,
    FixedIdentity,
    HeaderIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
)
from permit_guard.identity import JwtIdentity, SourceIdentity, TokenIdentity
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, build_server
from .keys import (
    EC_KEY,
    HMAC_SECRET,
    OTHER_RSA_KEY,
    RSA_KEY,
    PrivateKey,
    claims,
    forge,
    private_pem,
    public_pem,
    rsa_jwk,
    sign,
)
from .serving import serve_http

DENIED = "not found or not authorized"
NO_CREDENTIALS = "Authentication failed: invalid or missing credentials"
AUDIENCE = "billing-mcp"
ISSUER = "https://issuer.test"
RSA_PEM = public_pem(RSA_KEY)
MODERN_PROTOCOL = "2026-07-28"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts from an empty PERMIT_MCP_ environment in an empty directory."""
    for name in list(os.environ):
        if name.startswith("PERMIT_MCP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# -- helpers -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def guarded_http(
    guard: PermitMcpMiddleware, *, auth: AuthProvider | None = None
) -> AsyncIterator[str]:
    """The billing server behind ``guard`` (and FastMCP's ``auth``), served on loopback."""
    mcp = build_server()
    mcp.auth = auth
    mcp.add_middleware(guard)
    async with serve_http(mcp) as url:
        yield url


def http_client(url: str, headers: dict[str, str] | None = None, **options: Any) -> Client[Any]:
    """A FastMCP client over streamable HTTP sending ``headers`` on every request."""
    return Client(StreamableHttpTransport(url, headers=headers or {}), **options)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def rs256(**overrides: Any) -> str:
    """A valid RS256 token for the audience and issuer the RSA-configured guards expect."""
    return sign(claims(**{"aud": AUDIENCE, "iss": ISSUER, **overrides}), RSA_KEY, algorithm="RS256")


def now() -> int:
    """The current time as a JWT NumericDate."""
    return int(time.time())


def text_of(result: Any) -> str:
    """The text of a tool result's first content block."""
    return str(result.content[0].text)


async def refund(client: Client[Any], amount: float) -> tuple[bool, str]:
    """Call refund; whether it ran and what it said."""
    result = await client.call_tool("refund", {"amount": amount}, raise_on_error=False)
    return not result.is_error, text_of(result)


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What a caller saw: the greet call, the public health call, the tool list."""

    call: str
    call_failed: bool
    health: str
    listed: list[str]


#: What a caller without valid credentials sees: refused, yet the @public tool works and lists.
REFUSED = Outcome(call=NO_CREDENTIALS, call_failed=True, health="ok", listed=["health"])


async def probe(url: str, headers: dict[str, str]) -> Outcome:
    """Call greet and health and list the tools through a FastMCP client."""
    async with http_client(url, headers) as client:
        listed = sorted(tool.name for tool in await client.list_tools())
        greet = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
        health = await client.call_tool("health", {})
    return Outcome(
        call=text_of(greet), call_failed=greet.is_error, health=health.data, listed=listed
    )


Headers = list[tuple[str, str | bytes]]


async def post_rpc(
    http: httpx.AsyncClient,
    url: str,
    method: str,
    params: dict[str, Any],
    headers: Headers,
    *,
    client_name: str | None = "raw",
) -> httpx.Response:
    """POST one JSON-RPC request as a 2026-07-28 client sends it, with exactly ``headers``."""
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    if client_name is not None:
        meta["io.modelcontextprotocol/clientInfo"] = {"name": client_name, "version": "1"}
    routing: Headers = [
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", MODERN_PROTOCOL),
        ("mcp-method", method),
    ]
    if "name" in params:
        routing.append(("mcp-name", params["name"]))
    encoded = [
        (name.encode(), value if isinstance(value, bytes) else value.encode())
        for name, value in [*routing, *headers]
    ]
    return await http.post(
        url,
        headers=encoded,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}},
    )


async def rpc(
    http: httpx.AsyncClient,
    url: str,
    method: str,
    params: dict[str, Any],
    headers: Headers,
    *,
    client_name: str | None = "raw",
) -> dict[str, Any]:
    """The JSON-RPC result of one request (see :func:`post_rpc`)."""
    response = await post_rpc(http, url, method, params, headers, client_name=client_name)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


async def raw_probe(url: str, headers: Headers) -> Outcome:
    """Call greet and health and list the tools with raw JSON-RPC requests."""
    async with httpx.AsyncClient(timeout=10) as http:
        greet = await rpc(
            http, url, "tools/call", {"name": "greet", "arguments": {"name": "x"}}, headers
        )
        health = await rpc(http, url, "tools/call", {"name": "health", "arguments": {}}, headers)
        listing = await rpc(http, url, "tools/list", {}, headers)
    return Outcome(
        call=greet["content"][0]["text"],
        call_failed=greet["isError"],
        health=health["content"][0]["text"],
        listed=sorted(tool["name"] for tool in listing["tools"]),
    )


def tool_calls(engine: RecordingEngine) -> list[tuple[Any, bool]]:
    """(request, allowed) for every tools/call decision the engine made."""
    return [
        (request, decision.allowed)
        for request, decision in zip(engine.requests, engine.decisions, strict=True)
        if request.resource.attributes.get("mcp_method") == "tools/call"
    ]


# -- fixed ---------------------------------------------------------------------------------------


async def test_fixed_identity_is_the_default_client_user(engine: RecordingEngine) -> None:
    """With no identity settings every HTTP request is decided for the user ``client``."""
    guard = PermitMcpMiddleware(engine=engine)
    assert isinstance(guard.identity, FixedIdentity)
    async with guarded_http(guard) as url, http_client(url, bearer("ignored")) as client:
        allowed, text = await refund(client, 5)
    assert not allowed
    assert DENIED in text
    assert {request.user.key for request in engine.requests} == {"client"}


async def test_fixed_identity_value_names_the_user(engine: RecordingEngine) -> None:
    """identity_fixed_value makes every request that user, whatever the headers say."""
    guard = PermitMcpMiddleware(engine=engine, identity_fixed_value="alice")
    async with guarded_http(guard) as url, http_client(url, {"X-User": "carol"}) as client:
        assert await refund(client, 500) == (True, "refunded 500.0")
    assert {request.user.key for request in engine.requests} == {"alice"}


# -- header --------------------------------------------------------------------------------------


HEADER_IDENTITY_REFUSALS: list[Headers] = [
    [("x-user", "")],
    [("x-user", "a" * 300)],
    [("x-user", "alice"), ("x-user", "alice")],
]


async def test_header_identity_over_http(engine: RecordingEngine) -> None:
    """Header mode decides for the header's value; missing, empty, long or repeated is no one."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="header", identity_header="X-User")
    assert isinstance(guard.identity, HeaderIdentity)
    async with guarded_http(guard) as url:
        async with http_client(url, {"X-User": "alice"}) as client:
            alice = await refund(client, 500)
        async with http_client(url, {"X-User": "carol"}) as client:
            carol = await refund(client, 500)
        decided = {request.user.key for request in engine.requests}
        engine.reset()
        refused = [await probe(url, {})]
        for headers in HEADER_IDENTITY_REFUSALS:
            refused.append(await raw_probe(url, headers))
    assert alice == (True, "refunded 500.0")
    assert not carol[0]
    assert DENIED in carol[1]
    assert decided == {"alice", "carol"}
    for outcome in refused:
        assert outcome == REFUSED
    assert engine.calls == []


@pytest.mark.parametrize(
    "value", [b"alice\x85", b"\xa0alice"], ids=["trailing-nel", "leading-nbsp"]
)
async def test_header_identity_with_unprintable_edges_is_no_identity(
    engine: RecordingEngine, value: bytes
) -> None:
    """A header value with an unprintable character at either end is no identity."""
    guard = PermitMcpMiddleware(engine=engine, identity=HeaderIdentity("X-User"))
    async with guarded_http(guard) as url:
        outcome = await raw_probe(url, [("x-user", value)])
    assert outcome == REFUSED
    assert engine.calls == []


@pytest.mark.parametrize(
    "header", ["Authorization", "authorization", " Cookie ", "Proxy-Authorization"]
)
def test_header_identity_refuses_credential_headers(header: str) -> None:
    """A credential header cannot be the user key: refused at construction, naming the fix."""
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_IDENTITY_HEADER"):
        HeaderIdentity(header)
    with pytest.raises(ConfigurationError, match="carries credentials"):
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY),
            identity_mode="header",
            identity_header=header,
        )


# -- jwt -----------------------------------------------------------------------------------------

JWT_KEYS: list[Any] = [
    pytest.param(HMAC_SECRET, HMAC_SECRET, "HS256", id="hs256-secret"),
    pytest.param(RSA_PEM, RSA_KEY, "RS256", id="rs256-public-key"),
    pytest.param(public_pem(EC_KEY), EC_KEY, "ES256", id="es256-public-key"),
]


@pytest.mark.parametrize(("key_text", "signer", "algorithm"), JWT_KEYS)
async def test_jwt_identity_from_keywords(
    engine: RecordingEngine, key_text: str, signer: PrivateKey | str, algorithm: str
) -> None:
    """Keyword settings build a JWT guard; each request is decided for its token's subject."""
    guard = PermitMcpMiddleware(
        engine=engine,
        identity_mode="jwt",
        identity_jwt_secret=key_text,
        jwt_algorithms=["HS256", "RS256", "ES256"],
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    assert isinstance(guard.identity, JwtIdentity)
    assert guard.identity.algorithms == [algorithm]

    def token(user: str) -> str:
        return sign(claims(sub=user, aud=AUDIENCE, iss=ISSUER), signer, algorithm=algorithm)

    async with guarded_http(guard) as url:
        async with http_client(url, bearer(token("alice"))) as client:
            alice = await refund(client, 500)
        async with http_client(url, bearer(token("carol"))) as client:
            carol = await refund(client, 500)
            greeted = await client.call_tool("greet", {"name": "carol"})
        decided = {request.user.key for request in engine.requests}
        engine.reset()
        anonymous = await probe(url, {})
    assert alice == (True, "refunded 500.0")
    assert not carol[0]
    assert DENIED in carol[1]
    assert greeted.data == "hello carol"
    assert decided == {"alice", "carol"}
    assert anonymous == REFUSED
    assert engine.calls == []


def test_jwt_identity_refuses_a_private_key() -> None:
    """A private key given as the JWT secret is refused at construction."""
    with pytest.raises(ConfigurationError, match="private key"):
        JwtIdentity(secret=private_pem(RSA_KEY))


# -- the attack table ------------------------------------------------------------------------------


def _tamper() -> str:
    """A token lee signed, with its payload swapped for alice's."""
    header, _, signature = rs256(sub="lee").split(".")
    payload = rs256(sub="alice").split(".")[1]
    return f"{header}.{payload}.{signature}"


def _non_ascii() -> bytes:
    """A valid token with an "é" spliced in, as UTF-8 bytes."""
    token = rs256()
    return f"Bearer {token[:30]}é{token[30:]}".encode()


def _auth(value: Callable[[], str | bytes]) -> Callable[[], Headers]:
    """One Authorization header, its value made when the test runs (tokens expire)."""
    return lambda: [("authorization", value())]


def _bearer(token: Callable[[], str]) -> Callable[[], Headers]:
    """One ``Authorization: Bearer <token>`` header, made when the test runs."""
    return _auth(lambda: f"Bearer {token()}")


ATTACKS: list[Any] = [
    pytest.param(
        _bearer(lambda: forge(claims(aud=AUDIENCE, iss=ISSUER), alg="none")), id="alg-none"
    ),
    pytest.param(
        _bearer(lambda: forge(claims(aud=AUDIENCE, iss=ISSUER), alg="None")), id="alg-None"
    ),
    pytest.param(
        _bearer(
            lambda: forge(claims(aud=AUDIENCE, iss=ISSUER), alg="HS256", hmac_key=RSA_PEM.encode())
        ),
        id="hs256-signed-with-the-public-key",
    ),
    pytest.param(_bearer(lambda: rs256(exp=now() - 60)), id="expired"),
    pytest.param(_bearer(lambda: rs256(nbf=now() + 3600)), id="not-yet-valid"),
    pytest.param(_bearer(lambda: rs256(exp=None)), id="no-exp"),
    pytest.param(_bearer(lambda: rs256(aud="another-service")), id="wrong-audience"),
    pytest.param(_bearer(lambda: rs256(aud=None)), id="no-audience"),
    pytest.param(_bearer(lambda: rs256(iss="https://evil.test")), id="wrong-issuer"),
    pytest.param(_bearer(lambda: rs256(iss=None)), id="no-issuer"),
    pytest.param(
        _bearer(lambda: sign(claims(aud=AUDIENCE, iss=ISSUER), OTHER_RSA_KEY, algorithm="RS256")),
        id="signed-by-another-key",
    ),
    pytest.param(_bearer(_tamper), id="tampered-payload"),
    pytest.param(_bearer(lambda: rs256()[:-12]), id="truncated"),
    pytest.param(_bearer(lambda: "not.a.jwt"), id="garbage"),
    pytest.param(_auth(lambda: "Bearer"), id="scheme-without-token"),
    pytest.param(_auth(_non_ascii), id="non-ascii"),
    pytest.param(_bearer(lambda: rs256(padding="x" * 10_000)), id="over-8-kib-but-signed"),
    pytest.param(_bearer(lambda: rs256(sub=None)), id="no-sub"),
    pytest.param(_bearer(lambda: rs256(sub=42)), id="numeric-sub"),
    pytest.param(_bearer(lambda: rs256(sub=["alice"])), id="list-sub"),
    pytest.param(_bearer(lambda: rs256(sub="")), id="empty-sub"),
    pytest.param(_bearer(lambda: rs256(sub="a" * 300)), id="over-long-sub"),
    pytest.param(_auth(rs256), id="no-bearer-prefix"),
    pytest.param(_auth(lambda: f"Basic {rs256()}"), id="basic-scheme"),
    pytest.param(_auth(lambda: f"Bearer {rs256()} trailing"), id="trailing-text"),
    pytest.param(
        lambda: [("authorization", f"Bearer {rs256()}"), ("authorization", f"Bearer {rs256()}")],
        id="two-authorization-headers",
    ),
    pytest.param(lambda: [], id="no-header"),
]


def attacked_guard(engine: RecordingEngine) -> PermitMcpMiddleware:
    """A guard verifying RS256 tokens with the RSA public key, audience and issuer."""
    return PermitMcpMiddleware(
        engine=engine,
        identity=JwtIdentity(secret=RSA_PEM, audience=AUDIENCE, issuer=ISSUER),
    )


async def test_attacked_guard_accepts_a_valid_token(engine: RecordingEngine) -> None:
    """The guard the attacks run against accepts a valid token (the table's control)."""
    async with guarded_http(attacked_guard(engine)) as url:
        outcome = await probe(url, bearer(rs256()))
        raw = await raw_probe(url, [("authorization", f"Bearer {rs256()}")])
    tools = ["delete_invoice", "greet", "health", "refund", "undecorated"]
    assert outcome == Outcome(call="hello x", call_failed=False, health="ok", listed=tools)
    assert raw == outcome
    assert {request.user.key for request in engine.requests} == {"alice"}


@pytest.mark.parametrize("attack", ATTACKS)
async def test_attack_is_no_identity(
    engine: RecordingEngine, attack: Callable[[], Headers]
) -> None:
    """A bad token is no credentials: public tools stay open and the engine is never asked."""
    headers = attack()
    # The FastMCP client sends one ASCII value per header; anything else goes as raw JSON-RPC.
    names = [name for name, _ in headers]
    through_client = len(set(names)) == len(names) and all(
        isinstance(value, str) and value.isascii() for _, value in headers
    )
    async with guarded_http(attacked_guard(engine)) as url:
        if through_client:
            outcome = await probe(url, {name: str(value) for name, value in headers})
        else:
            outcome = await raw_probe(url, headers)
    assert outcome == REFUSED
    assert engine.calls == []


async def test_megabyte_token_never_reaches_the_engine(engine: RecordingEngine) -> None:
    """A 1 MB token is refused by the HTTP stack before the app; the server keeps serving."""
    huge = rs256(padding="x" * 1_000_000)
    call = {"name": "greet", "arguments": {"name": "x"}}
    async with guarded_http(attacked_guard(engine)) as url:
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                response = await post_rpc(
                    http, url, "tools/call", call, [("authorization", f"Bearer {huge}")]
                )
            except httpx.TransportError:
                status = None  # uvicorn drops the connection on an oversized header block
            else:
                status = response.status_code
        assert engine.calls == []
        after = await probe(url, bearer(rs256()))
    assert status is None or status >= 400
    assert after.call == "hello x"


# -- source --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_source_identity_is_the_declared_client_name(
    engine: RecordingEngine, mode: str
) -> None:
    """Source mode decides for the name the client declares, on either protocol era."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="source")
    assert isinstance(guard.identity, SourceIdentity)
    outcomes = {}
    async with guarded_http(guard) as url:
        for name in ("alice", "carol"):
            info = mcp_types.Implementation(name=name, version="1.0")
            async with http_client(url, client_info=info, mode=mode) as client:
                outcomes[name] = await refund(client, 500)
    assert outcomes["alice"] == (True, "refunded 500.0")
    assert not outcomes["carol"][0]
    assert {request.user.key for request in engine.requests} == {"alice", "carol"}


async def test_source_identity_without_a_name_is_unknown(engine: RecordingEngine) -> None:
    """A request that declares no client name is decided for the user ``unknown``."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="source")
    async with guarded_http(guard) as url, httpx.AsyncClient(timeout=10) as http:
        result = await rpc(
            http,
            url,
            "tools/call",
            {"name": "greet", "arguments": {"name": "x"}},
            [],
            client_name=None,
        )
    assert result["isError"]
    assert DENIED in result["content"][0]["text"]
    assert {request.user.key for request in engine.requests} == {"unknown"}


# -- token (FastMCP's own verifier) ------------------------------------------------------------


def verifier() -> JWTVerifier:
    """FastMCP's JWT verifier for RS256 tokens of the test issuer and audience."""
    return JWTVerifier(public_key=RSA_PEM, issuer=ISSUER, audience=AUDIENCE)


async def test_token_identity_from_fastmcp_access_token(engine: RecordingEngine) -> None:
    """Token mode takes ``sub`` from FastMCP's verified token, else its ``client_id``."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="token")
    assert isinstance(guard.identity, TokenIdentity)
    async with guarded_http(guard, auth=verifier()) as url:
        async with http_client(url, bearer(rs256(sub="alice"))) as client:
            alice = await refund(client, 500)
        async with http_client(url, bearer(rs256(sub=None, client_id="carol"))) as client:
            carol = await refund(client, 500)
            carol_greets = await client.call_tool("greet", {"name": "c"}, raise_on_error=False)
    assert alice == (True, "refunded 500.0")
    assert not carol[0]
    assert not carol_greets.is_error
    assert [request.user.key for request, _ in tool_calls(engine)] == ["alice", "carol", "carol"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param(bearer("not.a.jwt"), id="garbage"),
        pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
        pytest.param(bearer(rs256(aud="another-service")), id="wrong-audience"),
        pytest.param(bearer(rs256(exp=now() - 60)), id="expired"),
    ],
)
async def test_token_identity_without_a_verified_token(
    engine: RecordingEngine, headers: dict[str, str]
) -> None:
    """FastMCP's verifier refuses a missing or bad token over HTTP before the engine is asked."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="token")
    async with guarded_http(guard, auth=verifier()) as url:
        with pytest.raises(MCPError):
            async with http_client(url, headers) as client:
                await client.call_tool("greet", {"name": "x"})
    assert engine.calls == []


async def test_token_without_subject_or_client_id_is_no_identity(engine: RecordingEngine) -> None:
    """A verified token naming neither ``sub`` nor ``client_id`` is no identity."""
    guard = PermitMcpMiddleware(engine=engine, identity_mode="token")
    async with guarded_http(guard, auth=verifier()) as url:
        outcome = await probe(url, bearer(rs256(sub=None)))
    assert outcome == REFUSED
    assert engine.calls == []


# -- settings from the environment -----------------------------------------------------------------


def set_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Set PERMIT_MCP_<NAME> for each keyword."""
    for name, value in variables.items():
        monkeypatch.setenv(f"PERMIT_MCP_{name.upper()}", value)


async def test_jwt_identity_from_environment(
    engine: RecordingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every JWT variable is honoured: header, pattern, claims, algorithms, aud, iss."""
    set_environment(
        monkeypatch,
        identity_mode="jwt",
        identity_jwt_secret=HMAC_SECRET,
        identity_jwt_field="uid",
        identity_header="X-Api-Token",
        identity_header_regex="Token (.+)",
        jwt_algorithms='["HS256"]',
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        tenant_claim="org",
        user_attribute_claims='["department"]',
    )
    guard = PermitMcpMiddleware(engine=engine)
    assert isinstance(guard.identity, JwtIdentity)
    assert guard.identity.algorithms == ["HS256"]

    def token(**overrides: Any) -> str:
        payload = {
            "sub": "mallory",
            "uid": "acme-bob",
            "org": "acme",
            "department": "finance",
            "email": "bob@acme.test",
            "aud": AUDIENCE,
            "iss": ISSUER,
            **overrides,
        }
        return sign(claims(**payload))

    async with guarded_http(guard) as url:
        async with http_client(url, {"X-Api-Token": f"Token {token()}"}) as client:
            assert await refund(client, 500) == (True, "refunded 500.0")
        request = tool_calls(engine)[-1][0]
        engine.reset()
        refused = [
            await probe(url, bearer(token())),
            await probe(url, {"X-Api-Token": f"Bearer {token()}"}),
            await probe(url, {"X-Api-Token": f"Token {token(aud='another-service')}"}),
            await probe(url, {"X-Api-Token": f"Token {token(iss='https://evil.test')}"}),
            await probe(url, {"X-Api-Token": f"Token {token(uid=None)}"}),
            await probe(url, {"X-Api-Token": f"Token {sign(claims(uid='alice'), 'x' * 32)}"}),
        ]
    assert request.user.key == "acme-bob"
    assert request.user.attributes == {"department": "finance"}
    assert request.resource.tenant == "acme"
    for outcome in refused:
        assert outcome == REFUSED
    assert engine.calls == []


async def test_header_identity_from_environment(
    engine: RecordingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PERMIT_MCP_IDENTITY_MODE=header with PERMIT_MCP_IDENTITY_HEADER reads that header."""
    set_environment(monkeypatch, identity_mode="header", identity_header="X-User")
    guard = PermitMcpMiddleware(engine=engine)
    assert isinstance(guard.identity, HeaderIdentity)
    async with guarded_http(guard) as url, http_client(url, {"X-User": "alice"}) as client:
        assert await refund(client, 500) == (True, "refunded 500.0")
    assert {request.user.key for request in engine.requests} == {"alice"}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({"identity_mode": "header"}, "carries credentials", id="header-default"),
        pytest.param({"identity_mode": "jwt"}, "exactly one of", id="jwt-without-key"),
        pytest.param(
            {
                "identity_mode": "jwt",
                "identity_jwt_secret": HMAC_SECRET,
                "jwt_algorithms": '["RS256"]',
            },
            "own family",
            id="algorithms-of-another-family",
        ),
        pytest.param(
            {"identity_mode": "jwt", "identity_jwt_secret": HMAC_SECRET, "jwt_algorithms": "RS256"},
            "PERMIT_MCP_JWT_ALGORITHMS",
            id="algorithms-not-json",
        ),
        pytest.param(
            {"identity_mode": "jwt", "identity_jwt_secret": private_pem(RSA_KEY)},
            "private key",
            id="private-key",
        ),
        pytest.param(
            {
                "identity_mode": "jwt",
                "identity_jwt_secret": HMAC_SECRET,
                "identity_header_regex": "Bearer .+",
            },
            "needs a group",
            id="regex-without-group",
        ),
        pytest.param({"identity_mode": "oauth"}, "PERMIT_MCP_IDENTITY_MODE", id="unknown-mode"),
    ],
)
def test_identity_environment_mistakes_fail_at_construction(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    """Identity settings that cannot work are refused when the guard is built, naming the fix."""
    set_environment(monkeypatch, **variables)
    with pytest.raises(ConfigurationError, match=message):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY))


# -- JWKS ------------------------------------------------------------------------------------------


class JwksEndpoint:
    """A JWKS endpoint on loopback whose key set a test can rotate; counts its fetches.

    Use as a context manager: it serves from a daemon thread inside the block.
    """

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.fetches = 0
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JwksEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.fetches += 1
                body = json.dumps({"keys": endpoint.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def kid_token(key: PrivateKey, kid: str, user: str) -> str:
    """An RS256 token for ``user`` whose header names ``kid``."""
    return sign(claims(sub=user), key, algorithm="RS256", kid=kid)


async def test_jwks_key_rotation(engine: RecordingEngine) -> None:
    """Key A verifies; after rotation key B's new kid is fetched and verifies; kid zzz fails."""
    with JwksEndpoint([rsa_jwk(RSA_KEY, "a")]) as jwks:
        identity = JwtIdentity(jwks_url=jwks.url, algorithms=["RS256"])
        # PyJWKClient's documented cooldown_duration (30 s by default) delays fetching a
        # new kid after a fetch; zero lets the test rotate without waiting it out.
        assert identity._jwks is not None
        identity._jwks.cooldown_duration = 0
        guard = PermitMcpMiddleware(engine=engine, identity=identity)
        async with guarded_http(guard) as url:
            async with http_client(url, bearer(kid_token(RSA_KEY, "a", "alice"))) as client:
                before = await refund(client, 500)
            fetches_before = jwks.fetches
            jwks.keys = [rsa_jwk(OTHER_RSA_KEY, "b")]
            async with http_client(url, bearer(kid_token(OTHER_RSA_KEY, "b", "carol"))) as client:
                after = await client.call_tool("greet", {"name": "carol"})
            fetches_after = jwks.fetches
            decided = [request.user.key for request, _ in tool_calls(engine)]
            engine.reset()
            unknown_kid = await probe(url, bearer(kid_token(OTHER_RSA_KEY, "zzz", "alice")))
            wrong_key = await probe(url, bearer(kid_token(RSA_KEY, "b", "alice")))
    assert before == (True, "refunded 500.0")
    assert fetches_before == 1
    assert after.data == "hello carol"
    assert fetches_after == 2
    assert decided == ["alice", "carol"]
    for outcome in (unknown_kid, wrong_key):
        assert outcome == REFUSED
    assert jwks.fetches > fetches_after
    assert engine.calls == []


async def test_unknown_kids_do_not_hammer_the_jwks_endpoint(engine: RecordingEngine) -> None:
    """Within the refresh cooldown, tokens with unknown kids cause no further JWKS fetch."""
    with JwksEndpoint([rsa_jwk(RSA_KEY, "a")]) as jwks:
        guard = PermitMcpMiddleware(
            engine=engine, identity=JwtIdentity(jwks_url=jwks.url, algorithms=["RS256"])
        )
        async with guarded_http(guard) as url:
            async with http_client(url, bearer(kid_token(RSA_KEY, "a", "alice"))) as client:
                assert await refund(client, 500) == (True, "refunded 500.0")
            engine.reset()
            async with httpx.AsyncClient(timeout=10) as http:
                for attempt in range(10):
                    token = kid_token(OTHER_RSA_KEY, f"random-{attempt}", "alice")
                    listing = await rpc(
                        http, url, "tools/list", {}, [("authorization", f"Bearer {token}")]
                    )
                    assert [tool["name"] for tool in listing["tools"]] == ["health"]
    assert jwks.fetches == 1
    assert engine.calls == []


async def test_key_withdrawn_from_the_jwks_stops_verifying(engine: RecordingEngine) -> None:
    """Once the JWKS has been fetched again without key A, tokens signed by A are refused."""
    with JwksEndpoint([rsa_jwk(RSA_KEY, "a")]) as jwks:
        identity = JwtIdentity(jwks_url=jwks.url, algorithms=["RS256"])
        assert identity._jwks is not None
        identity._jwks.cooldown_duration = 0  # see test_jwks_key_rotation
        guard = PermitMcpMiddleware(engine=engine, identity=identity)
        async with guarded_http(guard) as url:
            async with http_client(url, bearer(kid_token(RSA_KEY, "a", "alice"))) as client:
                assert await refund(client, 500) == (True, "refunded 500.0")
            jwks.keys = [rsa_jwk(OTHER_RSA_KEY, "b")]
            async with http_client(url, bearer(kid_token(OTHER_RSA_KEY, "b", "carol"))) as client:
                await client.call_tool("greet", {"name": "carol"})
            assert jwks.fetches == 2
            engine.reset()
            withdrawn = await probe(url, bearer(kid_token(RSA_KEY, "a", "alice")))
    assert withdrawn == REFUSED
    assert engine.calls == []


async def test_unreachable_jwks_fails_closed(engine: RecordingEngine) -> None:
    """When the JWKS endpoint cannot be reached every token is no identity."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    identity = JwtIdentity(
        jwks_url=f"http://127.0.0.1:{port}/jwks.json", algorithms=["RS256"], jwks_timeout=2
    )
    async with guarded_http(PermitMcpMiddleware(engine=engine, identity=identity)) as url:
        outcome = await probe(url, bearer(kid_token(RSA_KEY, "a", "alice")))
    assert outcome == REFUSED
    assert engine.calls == []


# -- many users at once ------------------------------------------------------------------------

ROLES = ["admin", "clerk", "lister", None]
USERS = {f"user-{index}": ROLES[index % len(ROLES)] for index in range(10)}
CROWD_POLICY: dict[str, Any] = copy.deepcopy(POLICY)
CROWD_POLICY["users"].update({user: {"roles": [role]} for user, role in USERS.items() if role})
ALLOWED: dict[tuple[str | None, str | int], bool] = {
    ("admin", "greet"): True,
    ("admin", 50): True,
    ("admin", 500): True,
    ("clerk", "greet"): True,
    ("clerk", 50): True,
    ("clerk", 500): False,
    ("lister", "greet"): True,
    ("lister", 50): False,
    ("lister", 500): False,
}
CALLS: list[str | int] = ["greet", 50, 500]


async def test_interleaved_users_are_each_decided_for_themselves() -> None:
    """200 concurrent calls from 10 JWT users: every decision is for the caller's own user."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(CROWD_POLICY))
    guard = PermitMcpMiddleware(engine=engine, identity_mode="jwt", identity_jwt_secret=HMAC_SECRET)

    async def one(client: Client[Any], user: str, call: str | int) -> bool:
        if call == "greet":
            result = await client.call_tool("greet", {"name": user}, raise_on_error=False)
        else:
            result = await client.call_tool("refund", {"amount": call}, raise_on_error=False)
        return not result.is_error

    async def session(url: str, user: str) -> list[bool]:
        async with http_client(url, bearer(sign(claims(sub=user)))) as client:
            calls = [one(client, user, CALLS[index % 3]) for index in range(20)]
            return list(await asyncio.gather(*calls))

    async with guarded_http(guard) as url:
        results = await asyncio.gather(*(session(url, user) for user in USERS))

    for user, outcomes in zip(USERS, results, strict=True):
        role = USERS[user]
        assert outcomes == [ALLOWED.get((role, CALLS[i % 3]), False) for i in range(20)], user
    calls = tool_calls(engine)
    assert Counter(request.user.key for request, _ in calls) == dict.fromkeys(USERS, 20)
    for request, allowed in calls:
        role = USERS[request.user.key]
        if request.action == "greet":
            assert request.resource.attributes["arg_name"] == request.user.key
            assert allowed == ALLOWED.get((role, "greet"), False)
        else:
            amount = int(request.resource.attributes["arg_amount"])
            assert allowed == ALLOWED.get((role, amount), False)
    assert {request.user.key for request in engine.requests} == set(USERS)


# -- tenants and user attributes -----------------------------------------------------------------

USER_SET_POLICY: dict[str, Any] = {
    "resources": {"mcp_server": {"actions": ["refund", "greet"]}},
    "user_sets": {
        "finance": {
            "condition": {"user.department": {"equals": "finance"}},
            "grants": {"mcp_server": ["refund"]},
        }
    },
}


def claim_guard(engine: RecordingEngine, mode: str, **options: Any) -> PermitMcpMiddleware:
    """A guard in ``mode`` (jwt or token) with the given claim settings."""
    if mode == "jwt":
        options.update(identity_jwt_secret=RSA_PEM, jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    return PermitMcpMiddleware(engine=engine, identity_mode=mode, **options)


def claim_auth(mode: str) -> AuthProvider | None:
    """FastMCP's verifier in token mode; none in jwt mode, where the guard verifies."""
    return verifier() if mode == "token" else None


@pytest.mark.parametrize("mode", ["jwt", "token"])
async def test_tenant_and_attribute_claims_reach_the_engine(
    engine: RecordingEngine, mode: str
) -> None:
    """The tenant claim sets the resource tenant; only the configured claims become attributes."""
    guard = claim_guard(
        engine, mode, tenant_claim="org", user_attribute_claims=["department", "level"]
    )
    extra = {"email": "bob@acme.test", "role": "admin", "scope": "refund:any"}
    in_acme = rs256(sub="acme-bob", org="acme", department="finance", **extra)
    no_tenant = rs256(sub="acme-bob", department="finance", **extra)
    async with guarded_http(guard, auth=claim_auth(mode)) as url:
        async with http_client(url, bearer(in_acme)) as client:
            as_admin = await refund(client, 500)
        async with http_client(url, bearer(no_tenant)) as client:
            as_clerk = await refund(client, 500)
        requests = [request for request, _ in tool_calls(engine)]
        engine.reset()
        bad_tenant = await probe(url, bearer(rs256(sub="acme-bob", org=["acme"])))
    assert as_admin == (True, "refunded 500.0")
    assert not as_clerk[0]
    assert [request.resource.tenant for request in requests] == ["acme", "default"]
    for request in requests:
        assert request.user.key == "acme-bob"
        assert dict(request.user.attributes) == {"department": "finance"}
    assert bad_tenant == REFUSED
    assert engine.calls == []


@pytest.mark.parametrize("mode", ["jwt", "token"])
@pytest.mark.parametrize(
    ("configured", "token_claims", "allowed"),
    [
        pytest.param(["department"], {"department": "finance"}, True, id="in-the-set"),
        pytest.param(["department"], {"department": "sales"}, False, id="outside-the-set"),
        pytest.param(["department"], {}, False, id="claim-absent"),
        pytest.param(["level"], {"department": "finance"}, False, id="claim-not-configured"),
    ],
)
async def test_user_set_follows_attribute_claims(
    mode: str, configured: list[str], token_claims: dict[str, Any], allowed: bool
) -> None:
    """A user set keyed on a user attribute allows exactly the callers whose claim is in it."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(USER_SET_POLICY))
    guard = claim_guard(engine, mode, user_attribute_claims=configured)
    token = rs256(sub="erin", **token_claims)
    async with (
        guarded_http(guard, auth=claim_auth(mode)) as url,
        http_client(url, bearer(token)) as client,
    ):
        outcome = await refund(client, 5)
    assert outcome[0] is allowed
    (request, decided), *_ = tool_calls(engine)
    assert decided is allowed
    expected = {name: token_claims[name] for name in configured if name in token_claims}
    assert dict(request.user.attributes) == expected


# -- the _extract_principal_info hook --------------------------------------------------------------


class HeaderHook(PermitMcpMiddleware):
    """A subclass computing the caller itself from X-User and X-Department."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[tuple[MutableMapping[str, Any], str | None, str | None]] = []

    def _extract_principal_info(
        self, context: MiddlewareContext[Any]
    ) -> tuple[str | None, dict[str, Any]]:
        request = get_http_request()
        # Keep the scope itself, so identity comparisons cannot see a recycled id.
        self.seen.append((request.scope, request.headers.get("x-request-id"), context.method))
        user = request.headers.get("x-user")
        if user is None:
            return None, {}
        return user, {"department": request.headers.get("x-department", "")}

    def calls_per_message(self) -> Counter[tuple[int, str | None]]:
        """How often the hook ran for each (HTTP request, MCP method)."""
        return Counter((id(scope), method) for scope, _, method in self.seen)

    def calls_per_request_id(self) -> Counter[tuple[str | None, str | None]]:
        """How often the hook ran for each (X-Request-Id, MCP method)."""
        return Counter((request_id, method) for _, request_id, method in self.seen)


class AsyncHeaderHook(HeaderHook):
    """The same hook, as a coroutine."""

    async def _extract_principal_info(  # type: ignore[override]
        self, context: MiddlewareContext[Any]
    ) -> tuple[str | None, dict[str, Any]]:
        await asyncio.sleep(0)
        return super()._extract_principal_info(context)


HOOKED_MESSAGES: list[tuple[str, str, dict[str, Any]]] = [
    ("list", "tools/list", {}),
    ("refund", "tools/call", {"name": "refund", "arguments": {"amount": 5}}),
    ("health", "tools/call", {"name": "health", "arguments": {}}),
]


@pytest.mark.parametrize("hook", [HeaderHook, AsyncHeaderHook], ids=["sync", "async"])
async def test_principal_hook_runs_once_per_request(
    engine: RecordingEngine, hook: type[HeaderHook]
) -> None:
    """The subclass hook names the caller once per request; its attributes reach the engine."""
    guard = hook(engine=engine)
    headers = {"X-User": "carol", "X-Department": "billing"}
    async with guarded_http(guard) as url:
        async with http_client(url, headers) as client:
            small = await refund(client, 5)
            large = await refund(client, 500)
            listed = sorted(tool.name for tool in await client.list_tools())
            health = await client.call_tool("health", {})
        per_message = guard.calls_per_message()
        hook_calls, engine_calls = len(guard.seen), len(engine.calls)
        guard.seen.clear()
        async with httpx.AsyncClient(timeout=10) as http:
            for request_id, method, params in HOOKED_MESSAGES:
                await rpc(
                    http,
                    url,
                    method,
                    params,
                    [("x-user", "carol"), ("x-request-id", request_id)],
                )
    assert small == (True, "refunded 5.0")
    assert not large[0]
    assert listed == ["delete_invoice", "greet", "health", "refund"]
    assert health.data == "ok"
    assert set(per_message.values()) == {1}
    # Each identified request makes exactly one engine call: one hook call per engine call.
    assert hook_calls == engine_calls
    raw = guard.calls_per_request_id()
    assert raw[("list", "tools/list")] == 1
    assert raw[("refund", "tools/call")] == 1
    assert not any(request_id == "health" for request_id, _ in raw)
    assert {request.user.key for request in engine.requests} == {"carol"}
    assert dict(engine.requests[0].user.attributes) == {"department": "billing"}


@pytest.mark.parametrize("hook", [HeaderHook, AsyncHeaderHook], ids=["sync", "async"])
async def test_principal_hook_without_a_user_is_no_credentials(
    engine: RecordingEngine, hook: type[HeaderHook]
) -> None:
    """A hook answering ``(None, {})`` means no credentials: public only, the engine never asked."""
    guard = hook(engine=engine)
    async with guarded_http(guard) as url:
        outcome = await probe(url, {"X-Department": "billing"})
    assert outcome == REFUSED
    assert set(guard.calls_per_message().values()) == {1}
    assert guard.seen
    assert engine.calls == []


class BrokenHook(PermitMcpMiddleware):
    """A subclass whose hook fails."""

    def _extract_principal_info(
        self, context: MiddlewareContext[Any]
    ) -> tuple[str | None, dict[str, Any]]:
        raise LookupError("identity service unreachable")


async def test_principal_hook_that_raises_authenticates_nobody(engine: RecordingEngine) -> None:
    """A hook that raises is no identity (fail closed), never an error page or an allow."""
    async with guarded_http(BrokenHook(engine=engine)) as url:
        outcome = await probe(url, {"X-User": "alice"})
    assert outcome == REFUSED
    assert engine.calls == []
