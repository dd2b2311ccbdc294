"""Local wire-protocol stand-ins for the KMS providers, shipped for tests (Tink-style).

Each speaks its service's real protocol on 127.0.0.1 and can be stopped and restarted on the same
port (an outage) and told to fail or stall chosen operations:

* :class:`~.aws.MotoKms`: moto's KMS server behind a fault-injecting front (AWS JSON protocol).
* :class:`~.azure.AzureKeyVaultStandIn`: an HTTPS Key Vault (keys, rotate, wrapkey/unwrapkey).
* :class:`~.gcp.GcpKmsStandIn`: a gRPC Cloud KMS (Encrypt/Decrypt with AAD and CRC32C, versions).
* :class:`~.softhsm.SoftHsmToken`: a throw-away SoftHSMv2 token (a real PKCS#11 module).

Never for production: these hold keys in memory and accept any credential. Modules are imported
lazily so each needs only its own SDK.
"""
__all__ = ["aws", "azure", "gcp", "softhsm"]
