"""What the test apps do and what the tests send them: one place for the numbers both sides use."""

from __future__ import annotations

SLOW_SECONDS = 0.1
TOKEN_SECONDS = 0.06
STREAM_TOKENS = 5
LONG_STREAM_TOKENS = 200  # 12 s: the client leaves long before the end
CONCURRENT = 200
SLOW_CALLS, BOOM_CALLS, MISSING_CALLS = 3, 2, 2
UNAUTHORIZED_CALLS, FORBIDDEN_CALLS, LIMITED_CALLS = 3, 2, 4
SKIPPED_CALLS = 2  # to each of SKIPPED_PATHS

# Values that must never leave the process: in the query string, body, Authorization, Cookie and
# a header that is not allow-listed.
CANARY = "CANARY-7f3a"
CANARY_URL = f"/generate?api_key={CANARY}-query"
CANARY_BODY = {"prompt": f"{CANARY}-body"}
CANARY_HEADERS = {
    "authorization": f"Bearer {CANARY}-auth",
    "cookie": f"session={CANARY}-cookie",
    "x-user-email": f"{CANARY}@example.com",
}
SKIPPED_PATHS = ("/health", "/metrics")


def traceparent(trace_id: int, span_id: int) -> str:
    """A sampled W3C traceparent with ids made from small integers, so tests can find them again."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"
