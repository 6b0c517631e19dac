"""The one interface the step loop calls, the typed error it sees, and the retry policy.

Retries are done here rather than by the SDKs (whose clients are built with
``max_retries=0``) so that both providers share one policy whose delays are
configurable (tests run with millisecond backoff), honour ``retry-after`` headers the
same way, and map every failure onto :class:`LLMError`.

An :class:`LLMError`'s message is returned to API clients and stored as a run's error, so it
names the provider, the HTTP status and at most a short machine reason (the provider's error
code or type), never the upstream body: an endpoint's answer is not O's to pass on (it may be an
internal service's page that a tenant pointed an agent at).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from o.config import LLMSettings
from o.errors import OError
from o.llm.endpoints import EndpointRules, Route
from o.llm.types import ChatRequest, ChatResponse, StreamEvent
from o.net.outbound import OutboundPolicy

if TYPE_CHECKING:
    from o.llm.config import LLMConfig

T = TypeVar("T")

# Statuses the providers document as transient: request timeout, lock conflict, rate limit, server errors.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


class LLMError(OError):
    """A provider call failed. ``retryable`` says whether trying again later may succeed.

    ``context_overflow`` marks a prompt the model cannot take: the step loop should
    summarise older messages and try again rather than fail the run.
    """

    status_code = 502
    code = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = False,
        attempts: int = 1,
        context_overflow: bool = False,
    ) -> None:
        super().__init__(message, provider=provider, upstream_status=status, retryable=retryable)
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.attempts = attempts
        self.context_overflow = context_overflow
        # What the provider said, for the operator's log only: never in the message, details or a run.
        self.upstream_message: str | None = None


# How providers word "the prompt is longer than the context window" (OpenAI and compatibles, Anthropic).
_OVERFLOW = re.compile(
    r"context_length_exceeded|maximum context length|context window|prompt is too long|too many tokens"
    r"|reduce the length of the messages",
    re.IGNORECASE,
)


# A provider's machine-readable error code or type ("rate_limit_exceeded"); anything else is not repeated.
_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")

# How much of an upstream answer is kept for the operator's log.
UPSTREAM_EXCERPT = 500


def short_reason(value: object) -> str | None:
    """``value`` if it is a short error code such as ``invalid_request_error``, else None."""
    return value if isinstance(value, str) and _REASON.fullmatch(value) else None


def status_error(
    provider: str, status: int, message: str, code: str | None = None, kind: str | None = None
) -> LLMError:
    """The :class:`LLMError` for an HTTP error answer from a provider.

    ``message`` is the provider's text: it decides whether the prompt overflowed the context window
    and is kept for the operator's log, but the error's message carries only the provider, the status
    and a short reason (``code``, else ``kind``, when they are codes).
    """
    overflow = status in (400, 413) and bool(_OVERFLOW.search(f"{code or ''} {message}"))
    reason = short_reason(code) or ("context_length_exceeded" if overflow else None) or short_reason(kind)
    error = LLMError(
        f"{provider} returned HTTP {status}" + (f" ({reason})" if reason else ""),
        provider=provider,
        status=status,
        retryable=is_retryable_status(status),
        context_overflow=overflow,
    )
    error.upstream_message = message[:UPSTREAM_EXCERPT]
    return error


_TRANSPORT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11"})


def is_transport_error(exc: BaseException) -> bool:
    """A network failure raised by the SDKs' HTTP stack rather than as an SDK error.

    The SDKs wrap failures while *sending*; a connection dropped while a stream's body is
    being read surfaces as the HTTP library's own exception instead.
    """
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> RetryPolicy:
        return cls(settings.max_retries, settings.retry_base_delay_s, settings.retry_max_delay_s)

    def delay(self, retry_number: int, retry_after_s: float | None) -> float:
        """Seconds before retry ``retry_number`` (1-based): the server's hint if sane, else backoff."""
        # A server hint is followed up to a minute. A longer one means a quota reset rather than a
        # blip, and sleeping that long inside one step could outlive the Lambda, so back off instead.
        if retry_after_s is not None and 0 <= retry_after_s <= 60.0:
            return retry_after_s
        backoff = min(self.base_delay_s * (2 ** (retry_number - 1)), self.max_delay_s)
        # Up to a quarter of jitter keeps retries from many Lambdas from arriving in lockstep.
        return backoff * (0.75 + 0.25 * random.random())


# Builds the client of a provider whose adapter lives outside o/llm (Bedrock: o/aws/bedrock.py), from the
# config, where the call goes (always the operator's endpoint for these) and the options.
ClientBuilder = Callable[["LLMConfig", "Route", "ClientOptions"], "LLMClient"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    retry: RetryPolicy = RetryPolicy()
    # which endpoints a config may name and which of them get the operator's keys
    endpoints: EndpointRules = field(default_factory=EndpointRules.for_llm)
    # where a call may connect (the default: public addresses only)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    # provider -> the adapter the composition root chose for it (o.runtime: "bedrock" when configured)
    adapters: tuple[tuple[str, ClientBuilder], ...] = ()

    def adapter(self, provider: str) -> ClientBuilder | None:
        return dict(self.adapters).get(provider)

    @classmethod
    def from_settings(cls, settings: LLMSettings, outbound: OutboundPolicy) -> ClientOptions:
        return cls(
            settings.timeout_s,
            settings.connect_timeout_s,
            RetryPolicy.from_settings(settings),
            EndpointRules.for_llm(settings),
            outbound,
        )


def with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    classify: Callable[[Exception], tuple[LLMError, float | None] | None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying failures that ``classify`` maps to a retryable :class:`LLMError`.

    ``classify`` returns None for exceptions that are not provider errors (they propagate
    untouched), else the error to raise and the server's retry-after hint in seconds.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            classified = classify(exc)
            if classified is None:
                raise
            error, retry_after = classified
            error.attempts = attempt
            if not error.retryable or attempt > policy.max_retries:
                raise error from exc
            sleep(policy.delay(attempt, retry_after))


class LLMClient(Protocol):
    """A chat model behind one provider's API."""

    provider: str
    model: str

    def chat(self, request: ChatRequest) -> ChatResponse:
        """One completion; raises :class:`LLMError`."""
        ...

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Deltas as the provider produces them, ending with one ``Completed`` carrying the full response.

        Opening the stream is retried like ``chat``; a failure after the first event raises
        :class:`LLMError` (retryable) because the caller has already seen partial output.
        """
        ...


def retry_after_seconds(headers: object) -> float | None:
    """The delay a provider asked for, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    raw_ms = get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = get("retry-after")
    if raw:
        try:
            return float(raw)
        except ValueError:
            return None  # an HTTP date: fall back to our own backoff
    return None
