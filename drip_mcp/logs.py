"""Logging to stderr only, with known secrets masked in every record.

stdout belongs to the MCP stdio transport; a stray log line there would corrupt
the protocol, so everything goes to stderr. The filter replaces any secret it
was told about (the API key, the HTTP bearer token) with its masked form, in any
case and in partial echoes (the rule is `drip_mcp.masking`'s), as a last line of
defence behind the rule that secrets are never logged at all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from drip_mcp.masking import SecretMasker

__all__ = ["SecretMaskingFilter", "configure_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretMaskingFilter(logging.Filter):
    """Rewrite records so that none of `secrets` appears in the rendered message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._masker = SecretMasker(secrets)

    def add(self, secret: str) -> None:
        self._masker.add(secret)

    def _mask(self, text: str) -> str:
        return self._masker.mask_text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._masker:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Render the traceback now, masked; formatters reuse exc_text instead of re-rendering it.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return True


def configure_logging(level: str = "WARNING", secrets: Iterable[str] = ()) -> SecretMaskingFilter:
    """Send drip-mcp's (and the SDK's) logs to stderr at `level`; return the masking filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    masking = SecretMaskingFilter(secrets)
    handler.addFilter(masking)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return masking
