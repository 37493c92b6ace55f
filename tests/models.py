"""Policy models several test files share."""

from __future__ import annotations

from typing import Any


def workspace_owned_projects(*actions: str) -> dict[str, Any]:
    """The ``resources`` of a project tracker: a workspace's admins own its projects.

    ``project`` has ``actions`` (all granted to its ``owner``), and a
    ``parent`` relation to ``workspace``; ``owner`` is derived from ``admin``
    on the parent workspace.
    """
    return {
        "workspace": {"actions": ["read"], "roles": {"admin": ["read"]}},
        "project": {
            "actions": list(actions),
            "relations": {"parent": "workspace"},
            "roles": {
                "owner": {
                    "permissions": list(actions),
                    "granted_to": {
                        "users_with_role": [
                            {
                                "role": "admin",
                                "on_resource": "workspace",
                                "linked_by_relation": "parent",
                            }
                        ]
                    },
                }
            },
        },
    }
