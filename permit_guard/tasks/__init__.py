"""Background tasks (fastmcp-tasks) under the guard.

Register :class:`GuardedTasks` instead of fastmcp-tasks' ``TasksExtension``;
it takes the same keywords and the server's guard::

    from fastmcp import FastMCP
    from permit_guard import PermitMcpMiddleware
    from permit_guard.tasks import GuardedTasks

    mcp = FastMCP("reports")
    guard = PermitMcpMiddleware(policy_file="policy.yaml")
    guard.attach(mcp)
    mcp.add_extension(GuardedTasks(guard, url="redis://localhost:6379/0"))

Needs ``fastmcp-tasks`` installed beside permit-guard (it is released for
FastMCP 4.1.x so far). With a plain ``TasksExtension`` the guard refuses
every call that would become a task, and every ``tasks/*`` request.
"""

try:
    import fastmcp_tasks  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "permit_guard.tasks needs fastmcp-tasks (pip install fastmcp-tasks; it is "
        "released for FastMCP 4.1.x so far)"
    ) from exc

from permit_guard.tasks.binding import TaskBinding
from permit_guard.tasks.extension import GuardedTasks

__all__ = ["GuardedTasks", "TaskBinding"]
