"""The permit-fastmcp example server, on permit_guard and FastMCP 4.

    python3 -m uv run python examples/seed_server/server.py [--port 8000]

Tools: ``login`` (public: admin/password or client/client, returns a short-lived
JWT), ``greet``, ``greet-jwt`` (greets the user of the verified token) and
``conditional_greet`` (allowed only when ``number > 10``: ABAC on
``arg_number``). Identity comes from the JWT in the ``Authorization`` header.

It decides with ``policy.yaml`` beside this file, or with a Permit.io PDP when
``PERMIT_MCP_PERMIT_API_KEY`` is set (``PERMIT_MCP_PERMIT_PDP_URL``, default
``http://localhost:7766``). The JWT secret comes from ``PERMIT_MCP_IDENTITY_JWT_SECRET``; the
development default is obviously fake and logs a warning.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
from pathlib import Path
from typing import Any

import jwt
from fastmcp import FastMCP

from permit_guard import (
    JwtIdentity,
    PermitMcpMiddleware,
    current_principal,
    public,
    require_permission,
)

logger = logging.getLogger("seed_server")

DEV_SECRET = "dev-only-FAKE-secret-change-me-0123456789abcdef"
USERS = {"admin": "password", "client": "client"}
TOKEN_LIFETIME = datetime.timedelta(minutes=15)


def jwt_secret() -> str:
    secret = os.environ.get("PERMIT_MCP_IDENTITY_JWT_SECRET", "")
    if not secret:
        logger.warning(
            "PERMIT_MCP_IDENTITY_JWT_SECRET is not set: using the FAKE development secret"
        )
        return DEV_SECRET
    return secret


def build_server(secret: str, **guard_options: Any) -> FastMCP[Any]:
    """The example server, guarded; ``guard_options`` go to PermitMcpMiddleware."""
    if not os.environ.get("PERMIT_MCP_PERMIT_API_KEY") and "engine" not in guard_options:
        guard_options.setdefault("policy_file", str(Path(__file__).with_name("policy.yaml")))
    guard = PermitMcpMiddleware(identity=JwtIdentity(secret=secret), **guard_options)
    mcp: FastMCP[Any] = FastMCP("My MCP Server", lifespan=guard.lifespan)

    @mcp.tool
    @public
    def login(username: str, password: str) -> str:
        """Log in with username and password; returns a JWT for the Authorization header."""
        if USERS.get(username) != password:
            raise ValueError("Invalid username or password")
        now = datetime.datetime.now(datetime.UTC)
        payload = {"sub": username, "iat": now, "exp": now + TOKEN_LIFETIME}
        return jwt.encode(payload, secret, algorithm="HS256")

    @mcp.tool
    @require_permission()
    def greet(name: str) -> str:
        """Greet a user by name."""
        return f"Hello, {name}!"

    @mcp.tool(name="greet-jwt")
    @require_permission()
    def greet_jwt() -> str:
        """Greet the user of the verified JWT."""
        principal = current_principal()
        return f"Hello, {principal.key if principal else 'stranger'}! (secure)"

    @mcp.tool
    @require_permission()
    def conditional_greet(name: str, number: int) -> str:
        """Greet a user only if number > 10."""
        return f"Hello, {name}! Your number is {number}"

    guard.attach(mcp)
    return mcp


def dev_server() -> FastMCP[Any]:
    """The example server with the secret of the environment (``permit-guard`` loads this)."""
    return build_server(jwt_secret())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    dev_server().run(transport="http", host=args.host, port=args.port, show_banner=False)


if __name__ == "__main__":
    main()
