"""The exceptions permit_guard raises: one root, data on the subclasses."""

from __future__ import annotations

import os

from fastmcp.exceptions import AuthorizationError, to_mcp_error
from mcp import MCPError

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "ConfigurationError",
    "DecoratorError",
    "DirectoryError",
    "EngineError",
    "InvalidArguments",
    "MalformedRequest",
    "PermitGuardError",
    "PolicyFileError",
    "PolicyFileNotFound",
    "ServerLoadError",
    "UnknownComponent",
    "on_wire",
]

#: The one message a caller sees for a component it may not use or that does
#: not exist: the two are answered alike so nobody can probe for existence.
NOT_FOUND_OR_NOT_AUTHORIZED = "not found or not authorized"

#: How a denial names each kind of component (a template is read as a resource).
_NOUNS = {"tool": "tool", "resource": "resource", "template": "resource", "prompt": "prompt"}


class PermitGuardError(Exception):
    """Root of every error raised by permit_guard."""


class ConfigurationError(PermitGuardError, ValueError):
    """Settings or constructor arguments that cannot work together."""


class DecoratorError(PermitGuardError, TypeError):
    """A guard decorator used in a way that cannot be honoured.

    Attributes:
        function: The qualified name of the decorated function.
    """

    def __init__(self, message: str, *, function: str) -> None:
        super().__init__(message)
        self.function = function


class PolicyFileError(PermitGuardError, ValueError):
    """A local policy that cannot be loaded.

    Attributes:
        source: Where the policy came from (a file path, or ``"<dict>"``).
        problems: One line per problem, each naming its location.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid policy {source}:\n{listing}")
        self.source = source
        self.problems = problems


class PolicyFileNotFound(PolicyFileError):
    """A policy or data file that does not exist, named by its absolute path.

    Not "invalid policy": nothing was read, and the path a relative name was
    looked for at shows which working directory it was taken from.

    Attributes:
        path: The absolute path that was looked for.
    """

    def __init__(self, source: str, *, what: str = "a policy file") -> None:
        path = os.path.abspath(source)
        super().__init__(source, [f"file not found: {path}"])
        noun = what.removeprefix("an ").removeprefix("a ")
        self.args = (f"{noun} not found: {path}",)
        self.path = path


class DirectoryError(PermitGuardError, ValueError):
    """A change to the embedded engine's facts that was refused; nothing changed.

    Attributes:
        operation: The call, e.g. ``role_assignments.assign``.
        problem: What is wrong, in one sentence.
    """

    def __init__(self, operation: str, problem: str) -> None:
        super().__init__(f"{operation}: {problem}")
        self.operation = operation
        self.problem = problem


class EngineError(PermitGuardError):
    """The policy engine could not decide; the guard denies (fails closed)."""


class InvalidArguments(PermitGuardError):
    """Arguments the guard cannot map to a faithful request; the call is denied."""


class MalformedRequest(PermitGuardError, ValueError):
    """A request in the PDP's JSON form that cannot be read back (``AuthzRequest.from_pdp_json``).

    Attributes:
        problem: What is wrong, naming the field (``request.user.key must be...``).
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class ServerLoadError(ConfigurationError):
    """The server named on the command line cannot be loaded."""


class UnknownComponent(ConfigurationError):
    """The server has no component of that name (the ``permit-guard`` command says so)."""


class AccessDenied(PermitGuardError, AuthorizationError):
    """A request the guard refused.

    The message is what the client sees and never carries policy internals.

    Attributes:
        component: The tool name, resource URI or prompt name asked for.
    """

    def __init__(
        self, message: str = NOT_FOUND_OR_NOT_AUTHORIZED, *, component: str | None = None
    ) -> None:
        super().__init__(message)
        self.component = component

    @classmethod
    def hidden(cls, kind: str, name: str) -> AccessDenied:
        """The one answer for a denied, hidden or unknown component: all alike.

        Args:
            kind: ``tool``, ``resource``, ``template`` or ``prompt``.
            name: The tool or prompt name, or the URI, as the request named it.
        """
        noun = _NOUNS.get(kind, kind)
        return cls(
            f"Authorization failed for {noun} {name!r}: {NOT_FOUND_OR_NOT_AUTHORIZED}",
            component=name,
        )


class AuthenticationFailed(AccessDenied):
    """The caller has no valid credentials (the identity extractor found none)."""

    def __init__(self) -> None:
        super().__init__("Authentication failed: invalid or missing credentials")


def on_wire(denial: AccessDenied) -> MCPError:
    """A denial as the MCP error it must be for its message to reach the client.

    Outside the component handlers FastMCP masks every exception but
    ``MCPError`` as "Internal server error".
    """
    error = to_mcp_error(denial)
    error.__cause__ = denial
    return error
