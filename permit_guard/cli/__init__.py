"""The ``permit-guard`` command: inspect, check, lint and export a guarded FastMCP server.

Every command names the server as ``path/to/file.py[:var]`` or
``package.module[:var]`` (``var`` defaults to ``mcp``), imports it without
running its ``if __name__ == "__main__":`` block, and describes it through the
guard's own decision core, so what it shows is what the middleware does::

    permit-guard inspect examples/quickstart.py
    permit-guard check examples/quickstart.py --user bob --tool refund \\
        --args '{"amount": 50, "currency": "EUR"}' --policy examples/policy.yaml -v
    permit-guard check examples/quickstart.py --user bob --tool delete_invoice --key 42 \\
        --policy examples/policy.yaml
    permit-guard lint examples/quickstart.py --policy examples/policy.yaml
    permit-guard export examples/quickstart.py --format terraform --policy examples/policy.yaml
    permit-guard policy validate examples/policy.yaml

Exit codes: 0 for success (and "allowed"), 1 for "denied" or problems found,
2 for usage and configuration errors. ``--json`` prints JSON only, on stdout.
See ``docs/cli.md``.
"""

from permit_guard.cli.app import app, main, policy_app

__all__ = ["app", "main", "policy_app"]
