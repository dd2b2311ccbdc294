"""heliosdb-flink-crypto: client-side envelope encryption for Apache Flink checkpoints."""
from .crypto import DEFAULT_SEGMENT_SIZE, CheckpointCrypto
from .errors import (AuthenticationError, ConfigError, FormatError, HeliosCryptoError, KeyAccessError,
                     KmsAccessDeniedError, KmsError, KmsInvalidCiphertextError, KmsUnavailableError)
from .format import SUITE_AES_CBC_HMAC, SUITE_AES_GCM
from .kms import KeyProvider, open_provider
from .kms.cache import CachePolicy, DekCache

__version__ = "0.1.0"
__all__ = ["CheckpointCrypto", "DEFAULT_SEGMENT_SIZE", "AuthenticationError", "ConfigError", "FormatError",
           "HeliosCryptoError", "KeyAccessError", "KmsAccessDeniedError", "KmsError",
           "KmsInvalidCiphertextError", "KmsUnavailableError", "SUITE_AES_CBC_HMAC", "SUITE_AES_GCM",
           "KeyProvider", "open_provider", "CachePolicy", "DekCache", "__version__"]
