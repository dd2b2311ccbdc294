"""The crypto engine: per-file keys, segment ciphers, headers, streaming writer (stream.py) and reader (reader.py)."""
from .envelope import (DataKey, check_binding, check_version, kms_context, name_for, new_header, open_header,
                       seal_header)
from .reader import DecryptingReader
from .stream import EncryptingWriter
from .suites import FileKeys

__all__ = ["DataKey", "check_binding", "check_version", "kms_context", "name_for", "new_header", "open_header",
           "seal_header", "DecryptingReader", "EncryptingWriter", "FileKeys"]
