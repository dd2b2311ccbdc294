"""Per-call timeouts and bounded retries for the cloud/HSM key providers.

Every provider call goes through :func:`call`: the SDK call runs with the policy's timeout, and an
error is first *classified* by the provider into the package's error tree:

* :class:`KmsUnavailableError` (throttled, timed out, connection refused, 5xx): retried up to
  ``max_attempts`` in all, sleeping ``min(max_backoff, backoff * 2**n)`` scaled by full jitter
  (a uniform random fraction, as in AWS's "exponential backoff and jitter");
* :class:`KmsAccessDeniedError` / :class:`KmsInvalidCiphertextError`: raised at once, never retried
  (retrying a denial only hides it; retrying a bad ciphertext cannot help).

The last error is raised ``from`` the SDK exception, so the cause stays in the traceback, but the
message names only provider, key, operation and a short reason; never key material.

Settings read (``heliosdb.crypto.kms.<provider>.<name>``): ``timeout`` (per call, default 10 s),
``max-attempts`` (default 4), ``backoff`` (first delay, default 100 ms), ``max-backoff`` (default 2 s).
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

from ..config import parse_duration
from ..errors import ConfigError, KmsError, KmsUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_REASON = 200


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 10.0
    max_attempts: int = 4
    backoff: float = 0.1
    max_backoff: float = 2.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, str], provider: str) -> "RetryPolicy":
        """Read ``heliosdb.crypto.kms.<provider>.{timeout,max-attempts,backoff,max-backoff}``."""
        prefix = f"heliosdb.crypto.kms.{provider}."
        d = cls()
        values = {}
        for name, attr, parse in (("timeout", "timeout", parse_duration),
                                  ("max-attempts", "max_attempts", int),
                                  ("backoff", "backoff", parse_duration),
                                  ("max-backoff", "max_backoff", parse_duration)):
            raw = settings.get(prefix + name)
            if raw is None or str(raw).strip() == "":
                values[attr] = getattr(d, attr)
                continue
            try:
                values[attr] = parse(str(raw))
            except ValueError as e:
                raise ConfigError(prefix + name, str(e)) from None
        if values["timeout"] <= 0:
            raise ConfigError(prefix + "timeout", "must be greater than 0")
        if not 1 <= values["max_attempts"] <= 20:
            raise ConfigError(prefix + "max-attempts", "must be between 1 and 20")
        return cls(**values)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (0-based): full jitter."""
        return min(self.max_backoff, self.backoff * (2 ** attempt)) * rand()


def short(reason: object) -> str:
    """A one-line, bounded reason string from an SDK message (which never holds our key bytes:
    SDK errors echo request ids, key ids and codes, not request bodies)."""
    s = " ".join(str(reason).split())
    return s if len(s) <= MAX_REASON else s[:MAX_REASON - 3] + "..."


def call(policy: RetryPolicy, fn: Callable[[], T], classify: Callable[[BaseException], KmsError | None],
         *, sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random,
         on_retry: Callable[[int, KmsError], None] | None = None) -> T:
    """Run ``fn`` with bounded retries. ``classify(e)`` turns an SDK exception into a KmsError (or
    None: not ours, re-raised unchanged). Retryable errors are retried; the rest raise at once."""
    attempt = 0
    while True:
        try:
            return fn()
        except KmsError as e:  # already ours (e.g. a context check inside fn)
            err, cause = e, e.__cause__
        except Exception as e:  # noqa: BLE001 - classified below
            err, cause = classify(e), e
            if err is None:
                raise
        attempt += 1
        if not err.retryable or attempt >= policy.max_attempts:
            if err is cause:
                raise err
            raise err from cause
        if on_retry is not None:
            on_retry(attempt, err)
        sleep(policy.delay(attempt - 1, rand))


def call_logged(policy: RetryPolicy, fn: Callable[[], T], classify, provider: str, key: str, op: str) -> T:
    """:func:`call`, logging each retry with the provider, operation and key (never key material)."""
    def on_retry(n: int, err: KmsError) -> None:
        log.warning("%s %s with key %s: attempt %d failed (%s); retrying", provider, op, key, n, err.reason)
    return call(policy, fn, classify, on_retry=on_retry)


def unavailable(provider: str, key: str, op: str, reason: object) -> KmsUnavailableError:
    return KmsUnavailableError(provider, key, op, short(reason))


__all__ = ["RetryPolicy", "call", "short", "unavailable"]
