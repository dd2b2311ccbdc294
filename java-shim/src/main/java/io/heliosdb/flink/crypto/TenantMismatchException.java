package io.heliosdb.flink.crypto;

/**
 * A file or checkpoint of another tenant (Python: {@code TenantMismatchError}, a file copied between
 * tenants; {@code TenantRestoreError}, a restore or savepoint across tenants).
 */
public class TenantMismatchException extends KeyAccessException {
    private static final long serialVersionUID = 1L;

    public TenantMismatchException(String kind, String message) {
        super(kind, message);
    }
}
