"""Key lifecycle and tenants: rotation, rewrap/reencrypt, minimum version, usage report,
path-prefix tenants and crypto-shredding. See docs/operations.md."""
from .admin import destroy, set_min_version
from .rewrap import FileResult, Summary, reencrypt_file, rewrap_file
from .rotation import Rotation, RotationManager, RotationPolicy
from .state import RotationState
from .tenants import Tenant, TenantCrypto, TenantMap, TenantMismatchError, TenantRouter
from .usage import blocked_by, key_usage

__all__ = ["destroy", "set_min_version", "FileResult", "Summary", "reencrypt_file", "rewrap_file",
           "Rotation", "RotationManager", "RotationPolicy", "RotationState", "Tenant", "TenantCrypto",
           "TenantMap", "TenantMismatchError", "TenantRouter", "blocked_by", "key_usage"]
