"""The numbers the asset tests' app (tests/assets/app.py) runs on, for the tests to check against."""

RATE = 20
"""Monitored streaming calls a second, on a fixed schedule."""
EVERY = 5
"""Every EVERY-th call fails."""
INPUT, OUTPUT = 10, 30
"""Tokens of each call (a failed one has its input only)."""
BATCH_RATE = 10
"""Items a second the batch job advances."""
TENANTS = 60
"""More models than LLMOBS_MAX_SERIES: the rest share the overflow series."""
