"""The wire format: bytes in, value objects out. Imports no KMS and no engine code."""
from .header import (MAGIC, PREFIX_LEN, SUITE_AES_CBC_HMAC, SUITE_AES_GCM, SUITE_IDS, SUITE_NAMES, VERSION,
                     Header, KeySlot, parse, parse_prefix, serialize_unsigned, validate_segment_size)
from .layout import (ciphertext_length, nonce, overhead, plaintext_length, segment_count,
                     segment_offset)

__all__ = ["MAGIC", "PREFIX_LEN", "SUITE_AES_CBC_HMAC", "SUITE_AES_GCM", "SUITE_IDS", "SUITE_NAMES", "VERSION",
           "Header", "KeySlot", "parse", "parse_prefix", "serialize_unsigned", "validate_segment_size",
           "ciphertext_length", "nonce", "overhead", "plaintext_length", "segment_count",
           "segment_offset"]
