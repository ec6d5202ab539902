from __future__ import annotations

from cargohold.auth.limits import FailedLogins, RateLimiter


def test_bucket_allows_budget_then_refuses() -> None:
    limiter = RateLimiter(per_minute=3)
    budgets = [limiter.take("alice") for _ in range(4)]
    assert [b.allowed for b in budgets] == [True, True, True, False]
    assert [b.remaining for b in budgets[:3]] == [2, 1, 0]
    assert budgets[3].reset_seconds >= 1
    assert limiter.take("bob").allowed  # budgets are per key


def test_budget_is_shared_between_workers() -> None:
    limiter = RateLimiter(per_minute=4, share=2)
    assert [limiter.take("k").allowed for _ in range(3)] == [True, True, False]


def test_failed_logins_block_after_limit() -> None:
    failures = FailedLogins(limit=3, window_seconds=60)
    for _ in range(2):
        failures.failed("10.0.0.1")
    assert failures.blocked_for("10.0.0.1") == 0
    failures.failed("10.0.0.1")
    assert 0 < failures.blocked_for("10.0.0.1") <= 60
    assert failures.blocked_for("10.0.0.2") == 0
    failures.succeeded("10.0.0.1")
    assert failures.blocked_for("10.0.0.1") == 0


def test_failed_logins_window_expires() -> None:
    failures = FailedLogins(limit=1, window_seconds=0.0)
    failures.failed("a")
    assert failures.blocked_for("a") == 0
