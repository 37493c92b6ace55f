"""Loading what the ``permit-guard`` command works on: the server, its settings, an engine.

The server is imported without running its ``if __name__ == "__main__":``
block; the settings are those of the server's own
:class:`~permit_guard.middleware.PermitMcpMiddleware` when it has one (else the
environment's); the engine is built by the same factory the middleware uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from pydantic import SecretStr

from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.factory import engine_from_settings
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.permit import PermitPDPEngine
from permit_guard.exceptions import ConfigurationError, PolicyFileError, ServerLoadError
from permit_guard.middleware import PermitMcpMiddleware
from permit_guard.settings import GuardSettings, load_settings

__all__ = [
    "DEFAULT_VARIABLE",
    "chosen_engine",
    "guard_settings",
    "load_server",
    "policy_error_of",
    "policy_file_of",
    "server_guard",
    "shown",
]

DEFAULT_VARIABLE = "mcp"

_MISSING: Any = object()


def load_server(target: str) -> FastMCP[Any]:
    """Import the server named by ``target``, without running its ``__main__`` block.

    Args:
        target: ``path/to/file.py[:var]`` or ``package.module[:var]``; ``var``
            defaults to ``mcp``. It may also name a function that takes no
            arguments and returns the server (sync or async).

    Returns:
        The server.

    Raises:
        ServerLoadError: If the file or module cannot be found or imported, or
            the variable is missing or is not a FastMCP server.
    """
    location, variable = _split_target(target)
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    # Whatever the module prints while it is imported must not mix with --json output.
    with contextlib.redirect_stdout(sys.stderr):
        module = _import_file(location) if is_file else _import_module(location)
        obj = getattr(module, variable, _MISSING)
        if obj is _MISSING:
            raise ServerLoadError(f"{location} has no variable {variable!r}{_servers_in(module)}")
        return _as_server(obj, f"{location}:{variable}")


def policy_error_of(error: BaseException) -> PolicyFileError | None:
    """The policy error that made loading a server fail, if that is why it failed.

    A server whose middleware loads a broken policy fails while it is imported;
    ``lint`` reports that policy's problems rather than the import error.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:  # a cycle of causes ends the walk
        if isinstance(cause, PolicyFileError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _split_target(target: str) -> tuple[str, str]:
    location, colon, variable = target.rpartition(":")
    if not colon or not variable.isidentifier() or not location:
        # No variable given (a Windows drive letter is no variable either).
        return target, DEFAULT_VARIABLE
    return location, variable


def _import_file(location: str) -> Any:
    path = Path(location).expanduser()
    if not path.is_file():
        raise ServerLoadError(f"server file {location!r} not found")
    path = path.resolve()
    # Like `fastmcp run`: the file's folder is importable, so sibling modules are found.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # Never "__main__": the file's `if __name__ == "__main__":` block must not run.
    name = path.stem if path.stem.isidentifier() else "server"
    if name in sys.modules:
        name = f"_permit_guard_server_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ServerLoadError(f"cannot import {location!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc
    return module


def _import_module(location: str) -> Any:
    # A console script does not have the working directory on sys.path; `python -m` does.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name is not None and location.startswith(exc.name):
            raise ServerLoadError(
                f"no module named {location!r} (a file is named path/to/file.py)"
            ) from exc
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc


def _as_server(obj: Any, label: str) -> FastMCP[Any]:
    if isinstance(obj, FastMCP):
        return obj
    if inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        required = [
            p.name
            for p in inspect.signature(obj).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required:
            raise ServerLoadError(
                f"{label} is a function that takes arguments ({', '.join(required)}); name a "
                "FastMCP server, or a function that builds one without arguments"
            )
        try:
            built = obj()
            if inspect.isawaitable(built):
                built = asyncio.run(_await(built))
        except (Exception, SystemExit) as exc:
            raise ServerLoadError(f"{label}() failed: {_describe_error(exc)}") from exc
        if isinstance(built, FastMCP):
            return built
        raise ServerLoadError(f"{label}() returned {_kind_of(built)}, not a FastMCP server")
    raise ServerLoadError(f"{label} is {_kind_of(obj)}, not a FastMCP server")


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _servers_in(module: Any) -> str:
    names = sorted(name for name, value in vars(module).items() if isinstance(value, FastMCP))
    if names:
        return f" (FastMCP servers in it: {', '.join(names)}; name one as FILE:VAR)"
    return " and defines no FastMCP server at module level; name one as FILE:VAR"


def _kind_of(value: Any) -> str:
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


def _describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- settings --------------------------------------------------------------------------------------


def server_guard(server: FastMCP[Any]) -> PermitMcpMiddleware | None:
    """The first :class:`PermitMcpMiddleware` the server runs, if any."""
    for middleware in server.middleware:
        if isinstance(middleware, PermitMcpMiddleware):
            return middleware
    return None


def guard_settings(
    server: FastMCP[Any],
    *,
    server_name: str | None = None,
    default_deny: bool | None = None,
) -> tuple[GuardSettings, str]:
    """The settings the guard of ``server`` maps requests with.

    Those of the server's own :class:`PermitMcpMiddleware` when it has one,
    else the environment's (``PERMIT_MCP_*``, ``.env``); then the overrides.

    Args:
        server: The server.
        server_name: Overrides ``mcp_server_name``.
        default_deny: Overrides ``default_deny``.

    Returns:
        The settings, and where they came from (``"server"`` or ``"environment"``).

    Raises:
        ConfigurationError: On a malformed environment or an empty server name.
    """
    guard = server_guard(server)
    settings, origin = (guard.settings, "server") if guard else (load_settings(), "environment")
    updates: dict[str, Any] = {}
    if server_name is not None:
        if not server_name.strip():
            raise ConfigurationError("--server-name must not be empty")
        updates["mcp_server_name"] = server_name
    if default_deny is not None:
        updates["default_deny"] = default_deny
    return settings.model_copy(update=updates), origin


def policy_file_of(server: FastMCP[Any], settings: GuardSettings) -> str | None:
    """The policy file the server's guard decides with, else ``PERMIT_MCP_POLICY_FILE``."""
    guard = server_guard(server)
    engine = guard.engine if guard is not None else None
    if isinstance(engine, LocalPolicyEngine) and Path(engine.source).is_file():
        return engine.source
    return str(settings.policy_file) if settings.policy_file is not None else None


def chosen_engine(
    server: FastMCP[Any],
    settings: GuardSettings,
    *,
    policy: str | os.PathLike[str] | None = None,
    data: str | os.PathLike[str] | None = None,
    pdp: str | None = None,
    api_key: str | None = None,
) -> tuple[PolicyEngine, str]:
    """The engine the command-line options name, else the server's own, and how to call it.

    Built by the middleware's own factory (never cached: the command shows
    what the engine decides now). A ``data`` file goes with ``policy``: its
    facts replace the policy file's own, as ``LocalPolicyEngine.from_file(policy,
    data=...)`` reads them.

    Raises:
        ConfigurationError: When nothing names an engine, or a PDP has no key.
        PolicyFileError: When the policy file cannot be loaded.
    """
    fresh = {"cache_ttl": 0.0}
    if policy is not None and data is not None:
        return (
            LocalPolicyEngine.from_file(policy, data=data),
            f"local policy {policy} with data {data}",
        )
    if policy is not None:
        update = {**fresh, "policy_file": Path(policy), "permit_api_key": SecretStr("")}
        engine = engine_from_settings(settings.model_copy(update=update), file_given=True)
        return engine, f"local policy {policy}"
    if pdp is not None:
        key = api_key or settings.permit_api_key.get_secret_value()
        if not key:
            raise ConfigurationError("--pdp needs --api-key KEY (or PERMIT_MCP_PERMIT_API_KEY)")
        update = {
            **fresh,
            "policy_file": None,
            "permit_pdp_url": pdp,
            "permit_api_key": SecretStr(key),
        }
        engine = engine_from_settings(settings.model_copy(update=update), key_given=True)
        url = engine.url if isinstance(engine, PermitPDPEngine) else pdp
        return engine, f"Permit.io PDP at {url}"
    guard = server_guard(server)
    if guard is None:
        raise ConfigurationError(
            "the server has no PermitMcpMiddleware: give --policy FILE or --pdp URL --api-key KEY"
        )
    own = guard.engine
    if isinstance(own, LocalPolicyEngine):
        return own, f"the server's local policy {shown(own.source)}"
    if isinstance(own, PermitPDPEngine):
        return own, f"the server's Permit.io PDP at {own.url}"
    return own, f"the server's engine {own!r}"


def shown(path: str) -> str:
    """A path as short as it can be: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path
