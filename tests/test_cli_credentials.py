"""``permit-guard check --token`` / ``--claims``: decide as the server's identity settings would.

The command runs for real (``python -m permit_guard``) on the tracker server
with the guard's identity configured from the environment, as the middleware
reads it: a JWT is verified with the configured secret, and the tenant and
attribute claims are read by the configured names.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.keys import HMAC_SECRET, claims, sign
from tests.test_cli import cli

SERVER = "tests/cli_servers/tracker.py"
POLICY = "tests/cli_servers/tracker.yaml"
JWT_ENV = {
    "PERMIT_MCP_IDENTITY_MODE": "jwt",
    "PERMIT_MCP_IDENTITY_JWT_SECRET": HMAC_SECRET,
    "PERMIT_MCP_TENANT_CLAIM": "org",
    "PERMIT_MCP_USER_ATTRIBUTE_CLAIMS": '["department"]',
}
CREATE = ("check", SERVER, "--policy", POLICY, "--tool", "create_project")


def create(*caller: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = cli(*CREATE, "--args", '{"name": "x"}', *caller, env=env or JWT_ENV)
    return done.code, done.out, done.err


@pytest.mark.parametrize(
    ("org", "allowed"),
    [("acme", True), ("globex", False), (None, False)],
)
def test_a_token_is_decided_in_the_tenant_its_claim_names(org: str | None, allowed: bool) -> None:
    """olga is a member in acme only: her token's org claim decides where she is asked about."""
    token = sign(claims(sub="olga", org=org, department="eng"))
    code, out, _ = create("--token", token, "--json")
    assert code == (0 if allowed else 1)
    answer = json.loads(out)
    assert answer["allowed"] is allowed
    assert answer["user"] == "olga"
    assert answer["tenant"] == org
    assert answer["request"]["user"]["attributes"] == {"department": "eng"}


#: Tokens the server would reject, each made when its test runs (claims() expire in minutes).
REJECTED: dict[str, Callable[[], str]] = {
    "ExpiredSignatureError": lambda: sign(claims(sub="olga", org="acme", exp=1)),
    "InvalidSignature": lambda: sign(claims(sub="olga", org="acme"), "another-secret-" + "y" * 32),
    "claim 'sub' is missing": lambda: sign(claims(sub=None, org="acme")),
}


@pytest.mark.parametrize("why", list(REJECTED))
def test_a_token_the_server_would_reject_is_denied_before_any_component(why: str) -> None:
    """Identity before existence: the denial says why, and names no component."""
    code, out, _ = create("--token", REJECTED[why]())
    assert code == 1
    assert out.startswith("denied: the credentials name no caller")
    assert why in out
    assert "create_project" not in out


def test_claims_are_read_by_the_configured_names() -> None:
    """--claims skips verification (the claims are taken as verified) but not the mapping."""
    code, out, _ = create("--claims", '{"sub": "olga", "org": "acme"}')
    assert (code, out.splitlines()[0]) == (
        0,
        "allowed: tool 'create_project' for user 'olga' in tenant 'acme'",
    )


@pytest.mark.parametrize(
    ("caller", "env", "problem"),
    [
        (("--claims", '{"sub": "olga"}'), {"PERMIT_MCP_IDENTITY_MODE": "header"}, "reads no"),
        (("--token", "x.y.z"), {"PERMIT_MCP_IDENTITY_MODE": "token"}, "give the verified"),
        (("--user", "olga", "--token", "x.y.z"), JWT_ENV, "exactly one of"),
        (("--token", "x.y.z", "--tenant", "acme"), JWT_ENV, "go with --user"),
        ((), JWT_ENV, "exactly one of"),
    ],
)
def test_credentials_the_command_cannot_use_are_usage_errors(
    caller: tuple[str, ...], env: dict[str, str], problem: str
) -> None:
    """Exit 2, saying why, rather than a decision on a caller the server would not see."""
    code, _, err = create(*caller, env=env)
    assert code == 2
    assert problem in err
