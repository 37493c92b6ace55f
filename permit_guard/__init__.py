"""Per-component authorization for FastMCP servers, backed by Permit.io or an embedded engine."""

from permit_guard.audit import AuditSink, DecisionEvent, LoggingSink
from permit_guard.decorators import abac_from_args, public, require_permission
from permit_guard.engines import CachedEngine, LocalPolicyEngine, PermitPDPEngine, PolicyEngine
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

__all__ = [
    "AccessDenied",
    "AuditSink",
    "AuthenticationFailed",
    "AuthzRequest",
    "CachedEngine",
    "ClaimMapping",
    "ConfigurationError",
    "Decision",
    "DecisionEvent",
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
    "PermitGuardError",
    "PermitMcpMiddleware",
    "PermitPDPEngine",
    "PolicyEngine",
    "PolicyFileError",
    "Principal",
    "Resource",
    "SourceIdentity",
    "TokenIdentity",
    "abac_from_args",
    "create_permit_middleware",
    "current_principal",
    "fixed",
    "public",
    "require_permission",
]
