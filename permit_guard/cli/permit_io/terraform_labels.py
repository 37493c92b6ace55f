"""Block labels of one Terraform export, and references to the blocks they name.

Each kind of block has its own labels, each used once (``a``, then ``a_2``);
tenant roles and resource roles share ``permitio_role``'s. A label is made
when its block is written; a reference to an object with no block (tenant
``default``, an instance the policy does not declare) is its key as a string.
"""

from __future__ import annotations

from permit_guard.cli import hcl
from permit_guard.cli.permit_io.records import ConditionSet, Derivation, PermitExport, SetRule
from permit_guard.cli.permit_io.schema import condition_attributes

__all__ = ["Names"]


class Names:
    """The labels and references of one export's blocks."""

    __slots__ = ("_export", "_labels", "_made")

    def __init__(self, export: PermitExport) -> None:
        self._export = export
        self._labels: dict[str, hcl.Labels] = {}
        self._made: dict[tuple[str, ...], str] = {}

    def _new(self, kind: str, key: tuple[str, ...], text: str) -> str:
        made = self._labels.setdefault(kind, hcl.Labels()).new(text)
        self._made[(kind, *key)] = made
        return made

    def _key(self, kind: str, key: tuple[str, ...], fallback: str) -> str:
        made = self._made.get((kind, *key))
        return f"{kind}.{made}.key" if made is not None else hcl.string(fallback)

    # -- blocks ------------------------------------------------------------------------------

    def tenant(self, key: str) -> str:
        """The label of a tenant's block."""
        return self._new("permitio_tenant", (key,), key)

    def resource(self, key: str) -> str:
        """The label of a resource type's block."""
        return self._new("permitio_resource", (key,), key)

    def user_attribute(self, key: str) -> str:
        """The label of a user attribute's block (the same one each time)."""
        made = self._made.get(("permitio_user_attribute", key))
        return made or self._new("permitio_user_attribute", (key,), key)

    def role(self, key: str, resource: str | None = None) -> str:
        """The label of a tenant role's block, or of ``resource``'s resource role."""
        text = key if resource is None else f"{resource}__{key}"
        return self._new("permitio_role", (key, resource or ""), text)

    def relation(self, resource: str, key: str) -> str:
        """The label of a relation's block."""
        return self._new("permitio_relation", (resource, key), f"{resource}__{key}")

    def derivation(self, d: Derivation) -> str:
        """The label of a derivation's block: ``ONTYPE_ROLE_to_TYPE_TOROLE``."""
        text = f"{d.on_resource}_{d.from_role}_to_{d.resource}_{d.role}"
        return self._new("permitio_role_derivation", (text,), text)

    def condition_set(self, key: str) -> str:
        """The label of a resource set's or user set's block."""
        return self._new("condition_set", (key,), key)

    def rule(self, rule: SetRule) -> str:
        """The label of a condition set rule's block: ``USERSET_RESOURCESET_TYPE_ACTION``."""
        text = f"{rule.user_set}_{rule.resource_set}_{rule.permission}"
        return self._new("permitio_condition_set_rule", (text,), text)

    def instance(self, name: str) -> str:
        """The label of a resource instance's block, ``TYPE__KEY``."""
        return self._new("permitio_resource_instance", (name,), name.replace(":", "__", 1))

    def assignment(self, text: str) -> str:
        """The label of a role assignment's block."""
        return self._new("permitio_role_assignment", (text,), text)

    # -- references --------------------------------------------------------------------------

    def tenant_key(self, key: str) -> str:
        """A reference to a tenant's key (``"default"`` has no block)."""
        return self._key("permitio_tenant", (key,), key)

    def resource_key(self, key: str) -> str:
        """A reference to a resource type's key."""
        return self._key("permitio_resource", (key,), key)

    def role_key(self, key: str, resource: str | None = None) -> str:
        """A reference to a tenant role's key, or to ``resource``'s resource role's."""
        return self._key("permitio_role", (key, resource or ""), key)

    def relation_key(self, resource: str, key: str) -> str:
        """A reference to a relation's key."""
        return self._key("permitio_relation", (resource, key), key)

    def condition_set_key(self, key: str, kind: str) -> str:
        """A reference to a condition set's key; ``kind`` is its block type."""
        made = self._made.get(("condition_set", key))
        return f"{kind}.{made}.key" if made is not None else hcl.string(key)

    def instance_key(self, name: str) -> str:
        """A reference to an instance's key (its key as a string when it has no block)."""
        return self._key("permitio_resource_instance", (name,), name.partition(":")[2])

    def user_attributes_of(self, condition_set: ConditionSet) -> list[str]:
        """The declared user attributes a condition set's condition uses."""
        declared = self._export.user_attributes
        used = [
            n for side, n, _ in condition_attributes(condition_set.conditions) if side == "user"
        ]
        return [n for n in dict.fromkeys(used) if n in declared]
