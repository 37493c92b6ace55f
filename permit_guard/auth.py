"""FastMCP auth providers and ``@public``: callers without a token reach the guard.

With an auth provider (``FastMCP(auth=JWTVerifier(...))``), FastMCP answers a
request that carries no bearer token with HTTP 401 before any middleware runs,
so a ``@public`` login or health tool is unreachable for the very callers it is
for. FastMCP 4 has no setting that makes its provider optional: its MCP route
always checks the token first. :class:`OptionalAuth` wraps the provider and
adds a route ahead of that check for requests with **no** ``Authorization``
header, which reach the server unauthenticated, as on a server without a
provider; the guard then allows them ``@public`` components only. A request
with an ``Authorization`` header goes through the provider exactly as before,
so a malformed, forged or expired token is still refused with 401, never taken
for an anonymous caller.

Example::

    from fastmcp import FastMCP
    from fastmcp.server.auth.providers.jwt import JWTVerifier
    from permit_guard import OptionalAuth, PermitMcpMiddleware

    verifier = JWTVerifier(jwks_uri=..., issuer=..., audience=...)
    mcp = FastMCP("billing", auth=OptionalAuth(verifier))
    PermitMcpMiddleware(identity_mode="token", policy_file="policy.yaml").attach(mcp)
"""

from __future__ import annotations

import logging
from typing import Any

from fastmcp.server.auth import AccessToken, AuthProvider
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from permit_guard.exceptions import ConfigurationError
from permit_guard.identity import JwtIdentity, TokenIdentity
from permit_guard.middleware import PermitMcpMiddleware

__all__ = ["OptionalAuth"]

logger = logging.getLogger("permit_guard")


class OptionalAuth(AuthProvider):
    """A FastMCP auth provider that lets requests without a token through, unauthenticated.

    Everything else is the wrapped provider's: token verification, required
    scopes, its routes (OAuth endpoints, protected resource metadata) and
    middleware. Only a request with no ``Authorization`` header at all skips
    FastMCP's token check, and only on the streamable HTTP transport of a
    server whose :class:`~permit_guard.PermitMcpMiddleware` identifies callers
    by their token (``identity_mode="token"`` or a :class:`JwtIdentity`): the
    guard is then what stands between such a caller and every component, and
    it allows ``@public`` ones only. Otherwise (SSE, no guard, a guard with
    another identity, a subclass computing the caller itself) the request gets
    FastMCP's 401 as without the wrapper, and the reason is logged once at
    ERROR on the ``permit_guard`` logger.

    Args:
        provider: The FastMCP auth provider that verifies tokens
            (``JWTVerifier``, ``RemoteAuthProvider``, an OAuth provider...).

    Raises:
        ConfigurationError: When ``provider`` is not a FastMCP ``AuthProvider``.
    """

    provider: AuthProvider

    def __init__(self, provider: AuthProvider) -> None:
        if isinstance(provider, OptionalAuth):
            provider = provider.provider
        if not isinstance(provider, AuthProvider):
            raise ConfigurationError(
                "OptionalAuth wraps a FastMCP auth provider (JWTVerifier, RemoteAuthProvider, "
                f"an OAuth provider...), got {type(provider).__name__}"
            )
        # No AuthProvider.__init__: every attribute is read from the provider,
        # so settings it changes later (an OAuth proxy's URLs) stay in effect.
        self.provider = provider
        self._logged: set[str] = set()

    # The attributes FastMCP reads from ``server.auth``, all the provider's.

    @property
    def base_url(self) -> AnyHttpUrl | None:
        """The provider's base URL."""
        return self.provider.base_url

    @base_url.setter
    def base_url(self, value: AnyHttpUrl | None) -> None:
        self.provider.base_url = value

    @property
    def resource_base_url(self) -> AnyHttpUrl | None:
        """The provider's protected resource base URL."""
        return self.provider.resource_base_url

    @resource_base_url.setter
    def resource_base_url(self, value: AnyHttpUrl | None) -> None:
        self.provider.resource_base_url = value

    @property
    def required_scopes(self) -> list[str]:
        """The scopes every token must carry (a request without a token carries none)."""
        return self.provider.required_scopes

    @required_scopes.setter
    def required_scopes(self, value: list[str]) -> None:
        self.provider.required_scopes = value

    @property
    def scopes_supported(self) -> list[str]:
        """The provider's advertised scopes."""
        return self.provider.scopes_supported

    @property
    def challenge_scopes(self) -> list[str]:
        """The provider's challenge scopes."""
        return self.provider.challenge_scopes

    def get_challenge_scopes(self, required_scopes: list[str] | None = None) -> list[str]:
        """The provider's challenge scopes for ``required_scopes``."""
        return self.provider.get_challenge_scopes(required_scopes)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The provider's verification of ``token``."""
        return await self.provider.verify_token(token)

    def set_mcp_path(self, mcp_path: str | None) -> None:
        """Tell the provider where the MCP endpoint is."""
        self.provider.set_mcp_path(mcp_path)

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        """The provider's routes, then the route for requests without credentials.

        FastMCP adds the provider's routes before its own token-checked MCP
        route, so this one is matched first.
        """
        routes = list(self.provider.get_routes(mcp_path))
        if mcp_path is None:
            return routes
        return [*routes, _TokenlessRoute(mcp_path, self)]

    def get_well_known_routes(self, mcp_path: str | None = None) -> list[Route]:
        """The provider's discovery routes."""
        return self.provider.get_well_known_routes(mcp_path)

    def get_middleware(self) -> list[Middleware]:
        """The provider's middleware: it verifies every token that is sent."""
        middleware: list[Middleware] = self.provider.get_middleware()
        return middleware

    def _get_resource_url(self, path: str | None = None) -> AnyHttpUrl | None:
        return self.provider._get_resource_url(path)

    def __getattr__(self, name: str) -> Any:
        # Anything else (an OAuth provider's own methods) is the provider's too.
        if name == "provider":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.provider, name)

    def __repr__(self) -> str:
        return f"OptionalAuth({self.provider!r})"

    def _refuse(self, reason: str) -> None:
        """Log once why tokenless requests get FastMCP's 401 here."""
        if reason not in self._logged:
            self._logged.add(reason)
            logger.error("OptionalAuth: requests without a token get 401: %s", reason)


class _Forward:
    """The MCP app behind FastMCP's token check, once the route has found it."""

    __slots__ = ("app",)

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:  # matches() finds it before any request is routed here
            raise RuntimeError("OptionalAuth: the MCP endpoint was not found")
        await self.app(scope, receive, send)


class _TokenlessRoute(Route):
    """The MCP endpoint for requests without an ``Authorization`` header, ahead of FastMCP's."""

    def __init__(self, path: str, owner: OptionalAuth) -> None:
        self._forward = _Forward()
        super().__init__(path, self._forward, include_in_schema=False)
        self._owner = owner
        self._methods: set[str] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.FULL or _has_authorization(scope):
            return Match.NONE, {}
        reason = self._find(scope) or _guard_reason(scope["app"].state.fastmcp_server)
        if reason is not None:
            # Fail closed: FastMCP's own route answers 401, as without the wrapper.
            self._owner._refuse(reason)
            return Match.NONE, {}
        if self._methods is not None and scope["method"] not in self._methods:
            return Match.NONE, {}  # FastMCP's route answers 405
        return Match.FULL, child

    def _find(self, scope: Scope) -> str | None:
        """Find the app behind FastMCP's token check on this path; or why it cannot serve."""
        app = scope.get("app")
        state = getattr(app, "state", None)
        if getattr(state, "fastmcp_auth", None) is not self._owner:
            return "the app serving this path was not built with this OptionalAuth"
        if getattr(state, "transport_type", None) != "streamable-http":
            return "OptionalAuth lets requests without a token through on streamable HTTP only"
        if self._forward.app is not None:
            return None
        routes: list[BaseRoute] = getattr(getattr(app, "router", None), "routes", [])
        for route in routes:
            endpoint = getattr(route, "endpoint", None)
            if (
                isinstance(route, Route)
                and route is not self
                and route.path == self.path
                and isinstance(endpoint, RequireAuthMiddleware)
            ):
                self._methods = route.methods
                self._forward.app = endpoint.app
                return None
        return f"FastMCP's token-checked MCP route at {self.path!r} was not found"


def _has_authorization(scope: Scope) -> bool:
    """Whether the request sent credentials of any kind: then the provider must verify them."""
    return any(name.lower() == b"authorization" for name, _ in scope.get("headers", []))


def _guard_reason(server: Any) -> str | None:
    """Why ``server`` must not serve callers without a token; ``None`` when its guard can."""
    name = getattr(server, "name", "?")
    guards = [m for m in getattr(server, "middleware", []) if isinstance(m, PermitMcpMiddleware)]
    if not guards:
        return (
            f"server {name!r} has no PermitMcpMiddleware, so every component would be open "
            "to them: add the guard with identity_mode='token'"
        )
    for guard in guards:
        hooked = (
            type(guard)._extract_principal_info is not PermitMcpMiddleware._extract_principal_info
        )
        if not hooked and isinstance(guard.identity, TokenIdentity | JwtIdentity):
            return None
    return (
        f"the PermitMcpMiddleware of server {name!r} does not identify callers by their "
        f"token ({guards[0].identity!r}), so a caller without one could pass for a user: "
        "use identity_mode='token'"
    )
