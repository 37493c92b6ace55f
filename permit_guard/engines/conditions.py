"""Kept for old imports: the code lives in ``engines/local/`` (conditions, compiler, operators)."""

from permit_guard.engines.local.compiler import LOGICAL_OPERATORS, child_location, compile_condition
from permit_guard.engines.local.conditions import UNKNOWN, Condition, Subject, Truth
from permit_guard.engines.local.operators import OPERATORS, json_equal

__all__ = [
    "LOGICAL_OPERATORS",
    "OPERATORS",
    "UNKNOWN",
    "Condition",
    "Subject",
    "Truth",
    "child_location",
    "compile_condition",
    "json_equal",
]
