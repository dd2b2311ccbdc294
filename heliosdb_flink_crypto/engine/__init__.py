"""The crypto engine: per-file keys, segment ciphers, headers, streaming writer and reader."""
from .envelope import DataKey, kms_context, new_header, open_header, seal_header
from .stream import DecryptingReader, EncryptingWriter
from .suites import FileKeys

__all__ = ["DataKey", "kms_context", "new_header", "open_header", "seal_header",
           "DecryptingReader", "EncryptingWriter", "FileKeys"]
