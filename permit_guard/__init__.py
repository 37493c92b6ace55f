"""Per-component authorization for FastMCP servers, backed by Permit.io or an embedded engine."""

from permit_guard.audit import AuditSink, DecisionEvent, LoggingSink
from permit_guard.auth import OptionalAuth
from permit_guard.decision_log import DecisionLogSink
from permit_guard.decorators import abac_from_args, public, require_permission
from permit_guard.engines import (
    AuthZENEngine,
    CachedEngine,
    LocalPolicyEngine,
    PermitPDPEngine,
    PolicyEngine,
)
from permit_guard.exceptions import (
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    DecoratorError,
    DirectoryError,
    EngineError,
    MalformedRequest,
    PermitGuardError,
    PolicyFileError,
    PolicyFileNotFound,
)
from permit_guard.identity import (
    ClaimMapping,
    FixedIdentity,
    HeaderIdentity,
    IdentityExtractor,
    JwtIdentity,
    SourceIdentity,
    TokenIdentity,
)
from permit_guard.middleware import PermitMcpMiddleware, create_permit_middleware, current_principal
from permit_guard.model import AuthzRequest, Decision, Principal, Resource
from permit_guard.settings import GuardSettings
from permit_guard.spec import GuardSpec, fixed
from permit_guard.telemetry import Telemetry

__all__ = [
    "AccessDenied",
    "AuditSink",
    "AuthZENEngine",
    "AuthenticationFailed",
    "AuthzRequest",
    "CachedEngine",
    "ClaimMapping",
    "ConfigurationError",
    "Decision",
    "DecisionEvent",
    "DecisionLogSink",
    "DecoratorError",
    "DirectoryError",
    "EngineError",
    "FixedIdentity",
    "GuardSettings",
    "GuardSpec",
    "HeaderIdentity",
    "IdentityExtractor",
    "JwtIdentity",
    "LocalPolicyEngine",
    "LoggingSink",
    "MalformedRequest",
    "OptionalAuth",
    "PermitGuardError",
    "PermitMcpMiddleware",
    "PermitPDPEngine",
    "PolicyEngine",
    "PolicyFileError",
    "PolicyFileNotFound",
    "Principal",
    "Resource",
    "SourceIdentity",
    "Telemetry",
    "TokenIdentity",
    "abac_from_args",
    "create_permit_middleware",
    "current_principal",
    "fixed",
    "public",
    "require_permission",
]
