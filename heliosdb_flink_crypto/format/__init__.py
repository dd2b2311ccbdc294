"""The wire format: bytes in, value objects out. Imports no KMS and no engine code."""
from .binding import binding_name
from .header import (MAGIC, MAX_NAME, PREFIX_LEN, SUITE_AES_CBC_HMAC, SUITE_AES_GCM, SUITE_IDS, SUITE_NAMES,
                     VERSION, VERSION_1, VERSIONS, Header, KeySlot, declared_length, mac_input, parse, parse_prefix,
                     serialize_unsigned, validate_segment_size)
from .layout import (MAX_SEGMENTS, ciphertext_length, nonce, overhead, plaintext_length, segment_count,
                     segment_offset)

__all__ = ["MAGIC", "MAX_NAME", "PREFIX_LEN", "SUITE_AES_CBC_HMAC", "SUITE_AES_GCM", "SUITE_IDS", "SUITE_NAMES",
           "VERSION", "VERSION_1", "VERSIONS", "Header", "KeySlot", "declared_length", "mac_input", "parse",
           "parse_prefix", "serialize_unsigned", "validate_segment_size", "binding_name", "MAX_SEGMENTS",
           "ciphertext_length", "nonce", "overhead", "plaintext_length", "segment_count", "segment_offset"]
