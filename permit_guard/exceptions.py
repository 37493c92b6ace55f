"""The exceptions permit_guard raises: one root, data on the subclasses."""

from __future__ import annotations

from fastmcp.exceptions import AuthorizationError

__all__ = [
    "AccessDenied",
    "ConfigurationError",
    "DecoratorError",
    "EngineError",
    "PermitGuardError",
    "PolicyFileError",
]

#: The one message a caller sees for a component it may not use or that does
#: not exist: the two are answered alike so nobody can probe for existence.
NOT_FOUND_OR_NOT_AUTHORIZED = "not found or not authorized"


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


class EngineError(PermitGuardError):
    """The policy engine could not decide; the guard denies (fails closed)."""


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
