"""Cost of the metadata policy per call (run: python bench/redaction_cost.py).

Not part of the test suite: timing belongs here, not in unit tests.
"""

from __future__ import annotations

import timeit

from drip_mcp.redaction import sanitize_metadata, scrub_text

TYPICAL = {"model": "gpt-4o-mini", "tool": "web_search", "status": 200, "latency_ms": 123.4, "input_tokens": 7}
ADVERSARIAL = ["password=" * 20_000, "a@" * 50_000, "+1 " * 30_000, "1234 " * 20_000, "eyJ" * 30_000]


def main() -> None:
    sanitize_metadata(TYPICAL)
    runs = 20_000
    best = min(timeit.repeat(lambda: sanitize_metadata(TYPICAL), number=runs, repeat=5)) / runs
    print(f"sanitize_metadata, typical 5-key dict: {best * 1e6:.1f} us/call")
    line = "GET /v1/usage 200 in 12ms model=gpt-4o-mini tool=web_search key=sk_test_abcdefgh1234 ok"
    best = min(timeit.repeat(lambda: scrub_text(line), number=runs, repeat=5)) / runs
    print(f"scrub_text, {len(line)}-char log line: {best * 1e6:.1f} us/call")
    worst = max(min(timeit.repeat(lambda s=s: scrub_text(s), number=1, repeat=3)) for s in ADVERSARIAL)
    print(f"scrub_text, worst adversarial line (~100 KB): {worst * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
