"""The package's one error tree.

Every failure to authenticate or decrypt is the same opaque :class:`AuthenticationError`,
naming the file but never which check failed (pyca/cryptography's Fernet model).
Caller mistakes are ``ValueError``/``TypeError``; failures of a KMS are :class:`KmsError`.
No message ever carries key material.
"""
from __future__ import annotations


class HeliosCryptoError(Exception):
    """Root of every error this package raises on purpose."""


class SegmentAuthError(Exception):
    """Internal to the segment engine: one segment failed to authenticate. Not part of the error tree
    on purpose: every reader turns it into the opaque :class:`AuthenticationError` naming the file."""


class FormatError(HeliosCryptoError):
    """The bytes are not a well-formed encrypted file (bad magic, length field over its maximum)."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class MetadataFormatError(FormatError):
    """Decrypted checkpoint metadata (a ``_metadata`` file's plaintext) that Flink's own reader would
    not accept, or that this reader does not know: names the file and the byte offset."""

    def __init__(self, message: str, path: str | None = None, offset: int = 0):
        self.offset = offset
        super().__init__(f"checkpoint metadata, at byte {offset}: {message}", path)


class AuthenticationError(HeliosCryptoError):
    """The file failed authentication: tampered, truncated, spliced, or the wrong key.

    Deliberately opaque: it tells which file, never which check failed.
    """

    def __init__(self, path: str | None = None):
        self.path = path
        where = path or "<stream>"
        super().__init__(f"{where}: authentication failed (file tampered, truncated or wrong key)")


class MisplacedFileError(AuthenticationError):
    """The file authenticated, but it was sealed for another place (rule F-24): swapped in from
    another checkpoint, rolled back to an older copy, or renamed outside the encrypted filesystem."""

    def __init__(self, path: str | None, sealed_for: str, expected: str):
        self.path, self.sealed_for, self.expected = path, sealed_for, expected
        HeliosCryptoError.__init__(
            self, f"{path or '<stream>'}: sealed for another place ({sealed_for!r}, expected {expected!r}): "
                  "swapped, rolled back or renamed; refused. If you moved it on purpose, re-bind it with "
                  "`heliosdb-flink-crypto rewrap --rebind` (or read it once with --expect-name)")


class KeyAccessError(HeliosCryptoError):
    """No configured key provider could unwrap the file's data key."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class TenantMismatchError(KeyAccessError):
    """A file's header names another tenant than the one its path belongs to (copied across tenants)."""

    def __init__(self, path: str | None, header_tenant: str, path_tenant: str):
        self.header_tenant, self.path_tenant = header_tenant, path_tenant
        super().__init__(f"file belongs to tenant {header_tenant or '<default>'!r} but its path belongs to "
                         f"tenant {path_tenant or '<default>'!r}; refused (copied between tenants?)", path)


class TenantRestoreError(KeyAccessError):
    """A job was asked to restore a checkpoint or savepoint of another tenant, or to write a savepoint
    under another tenant's prefix (tenant guard)."""

    def __init__(self, pointer: str, pointer_tenant: str, job_dir: str, job_tenant: str, action: str = "restore"):
        self.pointer_tenant, self.job_tenant, self.action = pointer_tenant, job_tenant, action
        what, rule = (("the savepoint target", "writes savepoints only under its own tenant's prefix")
                      if action == "savepoint" else ("the checkpoint", "restores only its own tenant's checkpoints"))
        super().__init__(
            f"{action} refused: {what} belongs to tenant {pointer_tenant or '<default>'!r} but this "
            f"job's checkpoint directory {job_dir} belongs to tenant {job_tenant or '<default>'!r} "
            f"(heliosdb.crypto.tenants.*); a job {rule}", pointer)


class KmsError(HeliosCryptoError):
    """A key provider failed. Names the provider, key and operation, never key material."""

    retryable = False

    def __init__(self, provider: str, key: str, operation: str, reason: str):
        self.provider, self.key, self.operation, self.reason = provider, key, operation, reason
        super().__init__(f"{provider} {operation} with key {key!r} failed: {reason}")


class KmsUnavailableError(KmsError):
    """Transient: throttled, timed out, or the service could not be reached."""

    retryable = True


class KmsAccessDeniedError(KmsError):
    """The caller may not use the key (denied, disabled, missing, destroyed or below the minimum version)."""


class KmsInvalidCiphertextError(KmsError):
    """The KMS refused the wrapped key (wrong key, wrong context, tampered blob)."""


class ConfigError(HeliosCryptoError, ValueError):
    """A setting is missing or wrong; the message names the option key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


class FipsModeError(HeliosCryptoError):
    """FIPS mode was requested and one of its checks failed; ``check`` names which."""

    def __init__(self, check: str, message: str):
        self.check = check
        super().__init__(f"FIPS mode (heliosdb.crypto.fips-mode): check {check} failed: {message}")


class NotRegularFileError(HeliosCryptoError, OSError):
    """A path that should hold a file holds something else (directory, FIFO, socket, device, link)."""

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        super().__init__(f"{path}: {what}, not a regular file; not read")


class MissingExtraError(HeliosCryptoError, ImportError):
    """A feature that is switched on needs an optional dependency that is not installed; names the
    pip extra that brings it."""

    def __init__(self, feature: str, module: str, extra: str):
        self.feature, self.module, self.extra = feature, module, extra
        super().__init__(f"{feature} needs the Python package {module!r}, which is not installed: "
                         f"pip install 'heliosdb-flink-crypto[{extra}]'", name=module)


class UnsupportedFlinkError(HeliosCryptoError, ValueError):
    """The Flink found (a distribution, PyFlink, the JVM) is of no line this package ships jars for."""

    def __init__(self, version: str | None, where: str, supported: str):
        self.version = version
        found = f"Flink {version} is not supported" if version else "cannot tell the Flink version"
        super().__init__(f"{where}: {found}; supported: {supported}")
