"""Who the server acts for: the tenant of a call.

A tenant owns the ledger, budgets, confirm tokens, outbox rows and webhook
secret files it creates, and sees only its own. The rule, applied in ONE place
(`tenant_of`, called by ``DripServer.call_tool`` and the ledger resource):

1. an explicit subject set for the current request with `acting_as` (OAuth:
   the token subject; the HTTP auth layer sets it), else
2. the fingerprint of the Drip key the call is made with: the client's key
   with ``--per-request-key``, the server's own key with ``--auth-token`` or
   over stdio.

Subjects and fingerprints never collide: a subject is stored as ``sub:<subject>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from drip_mcp.keys import ApiKey

__all__ = ["acting_as", "tenant_for_fingerprint", "tenant_of"]

# The tenant override of the request being served (OAuth token subject); None: the key decides.
_subject: ContextVar[str | None] = ContextVar("drip_mcp_tenant_subject", default=None)


@contextmanager
def acting_as(subject: str | None) -> Iterator[None]:
    """Make `subject` (an OAuth token subject) the tenant of everything run inside; None changes nothing."""
    token = _subject.set(subject if subject else _subject.get())
    try:
        yield
    finally:
        _subject.reset(token)


def tenant_of(key: ApiKey) -> str:
    """The tenant of a call made with `key` in the current context (see the module docstring)."""
    return tenant_for_fingerprint(key.fingerprint)


def tenant_for_fingerprint(fingerprint: str) -> str:
    """`tenant_of` for a key known only by its fingerprint (an outbox scope)."""
    subject = _subject.get()
    return f"sub:{subject}" if subject else fingerprint
