"""The segment engine: the AEAD side of the format, for one file whose data key is given.

Per-file keys derived from a DEK (suites.py), the segment ciphers, sealing and opening headers
(envelope.py), the streaming writer (stream.py) and the seekable reader (reader.py). It knows no KMS,
no cache and no configuration: CheckpointCrypto (crypto.py) brings the data keys."""
from .envelope import (DataKey, check_binding, check_version, kms_context, name_for, new_header, open_header,
                       seal_header)
from .reader import DecryptingReader
from .stream import EncryptingWriter
from .suites import FileKeys

__all__ = ["DataKey", "check_binding", "check_version", "kms_context", "name_for", "new_header", "open_header",
           "seal_header", "DecryptingReader", "EncryptingWriter", "FileKeys"]
