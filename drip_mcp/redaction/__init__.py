"""Metadata and secret policy, outgoing and incoming (see ``docs/redaction.md``).

* `detectors`: does a string look like a secret or PII (`looks_sensitive`, `scrub_text`);
* `key_names`: is a key a secret/PII or raw-content name (`is_sensitive_key`);
* `metadata`: the policies, limits and the walk (`sanitize_metadata`).
"""

from drip_mcp.redaction.detectors import REDACTED, looks_sensitive, scrub_text
from drip_mcp.redaction.key_names import is_sensitive_key
from drip_mcp.redaction.metadata import (
    MetadataPolicy,
    MetadataRejected,
    RedactionLimits,
    Sanitized,
    sanitize_metadata,
)

__all__ = [
    "REDACTED",
    "MetadataPolicy",
    "MetadataRejected",
    "RedactionLimits",
    "Sanitized",
    "is_sensitive_key",
    "looks_sensitive",
    "sanitize_metadata",
    "scrub_text",
]
