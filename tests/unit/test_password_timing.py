"""A login for a user who does not exist costs as much as a wrong password."""

from __future__ import annotations

import statistics
import time

from cargohold.auth.secrets import hash_password, verify_password


def _median_seconds(call: object, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def test_unknown_user_costs_a_full_verification() -> None:
    stored = hash_password("the-right-password")
    verify_password(None, "warm-up")  # the stand-in hash is made once, on first use
    wrong = _median_seconds(lambda: verify_password(stored, "a-wrong-password"))
    missing = _median_seconds(lambda: verify_password(None, "a-wrong-password"))
    assert verify_password(stored, "the-right-password")
    assert not verify_password(stored, "a-wrong-password")
    assert not verify_password(None, "the-right-password")
    # Same argon2 work either way: no answer is measurably faster for a missing user.
    assert missing > wrong * 0.3  # skipping the work would make this ~1000x smaller
