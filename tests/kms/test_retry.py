"""The retry policy: bounded attempts, full-jitter backoff, no retry of refusals, settings errors."""
from __future__ import annotations

import pytest

from heliosdb_flink_crypto.errors import (ConfigError, KmsAccessDeniedError, KmsInvalidCiphertextError,
                                          KmsUnavailableError)
from heliosdb_flink_crypto.kms.retry import RetryPolicy, call, short


class Flaky:
    def __init__(self, errors, result="ok"):
        self.errors, self.result, self.calls = list(errors), result, 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def classify(e):
    if isinstance(e, TimeoutError):
        return KmsUnavailableError("p", "k", "op", "timed out")
    if isinstance(e, PermissionError):
        return KmsAccessDeniedError("p", "k", "op", "denied")
    return None


def test_transient_errors_retried_with_bounded_jittered_backoff():
    sleeps = []
    fn = Flaky([TimeoutError(), TimeoutError()])
    policy = RetryPolicy(max_attempts=4, backoff=0.1, max_backoff=0.15)
    assert call(policy, fn, classify, sleep=sleeps.append, rand=lambda: 1.0) == "ok"
    assert fn.calls == 3 and sleeps == [0.1, 0.15]  # doubled, capped at max_backoff
    assert call(policy, Flaky([TimeoutError()]), classify, sleep=sleeps.append, rand=lambda: 0.25) == "ok"
    assert sleeps[-1] == pytest.approx(0.025)


def test_gives_up_after_max_attempts_with_cause():
    fn = Flaky([TimeoutError("t%d" % i) for i in range(10)])
    retries = []
    with pytest.raises(KmsUnavailableError) as e:
        call(RetryPolicy(max_attempts=3), fn, classify, sleep=lambda s: None,
             on_retry=lambda n, err: retries.append(n))
    assert fn.calls == 3 and retries == [1, 2] and isinstance(e.value.__cause__, TimeoutError)


def test_refusals_and_our_own_errors_are_not_retried():
    fn = Flaky([PermissionError()])
    with pytest.raises(KmsAccessDeniedError):
        call(RetryPolicy(), fn, classify, sleep=lambda s: None)
    assert fn.calls == 1
    fn = Flaky([KmsInvalidCiphertextError("p", "k", "unwrap", "bad")])
    with pytest.raises(KmsInvalidCiphertextError):
        call(RetryPolicy(), fn, classify, sleep=lambda s: None)
    assert fn.calls == 1
    fn = Flaky([KmsUnavailableError("p", "k", "unwrap", "crc")])  # ours and retryable
    assert call(RetryPolicy(), fn, classify, sleep=lambda s: None) == "ok" and fn.calls == 2


def test_unclassified_errors_pass_through():
    with pytest.raises(KeyError):
        call(RetryPolicy(), Flaky([KeyError("x")]), classify, sleep=lambda s: None)


def test_settings():
    p = RetryPolicy.from_settings({"heliosdb.crypto.kms.aws.timeout": "2500 ms",
                                   "heliosdb.crypto.kms.aws.max-attempts": "6",
                                   "heliosdb.crypto.kms.aws.backoff": "50 ms",
                                   "heliosdb.crypto.kms.aws.max-backoff": "1 s",
                                   "heliosdb.crypto.kms.gcp.timeout": "99 s"}, "aws")
    assert p == RetryPolicy(timeout=2.5, max_attempts=6, backoff=0.05, max_backoff=1.0)
    assert RetryPolicy.from_settings({}, "gcp") == RetryPolicy()
    for key, value in (("timeout", "0"), ("timeout", "soon"), ("max-attempts", "0"), ("max-attempts", "many")):
        with pytest.raises(ConfigError, match=f"heliosdb.crypto.kms.azure.{key}"):
            RetryPolicy.from_settings({f"heliosdb.crypto.kms.azure.{key}": value}, "azure")


def test_short_reason_is_bounded_and_one_line():
    assert short("a\n  b\tc") == "a b c"
    assert len(short("x" * 1000)) == 200 and short("x" * 1000).endswith("...")
