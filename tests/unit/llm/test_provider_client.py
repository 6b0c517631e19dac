from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest

from o.llm.client import LLMError
from o.llm.provider_client import SdkErrors, classify_sdk_error, stream_failure

OPENAI = SdkErrors(openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError, openai.OpenAIError)
ANTHROPIC = SdkErrors(
    anthropic.APIStatusError, anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.AnthropicError
)
# The HTTP library both SDKs are built on.
REQUEST = httpx2.Request("POST", "http://provider.test/v1/chat/completions")


def _response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, request=REQUEST)


def test_status_errors_carry_status_retryability_and_the_retry_after_hint() -> None:
    limited = openai.RateLimitError("slow down", response=_response(429, {"retry-after": "2"}), body=None)
    classified = classify_sdk_error("openai", OPENAI, limited)
    assert classified is not None
    error, retry_after = classified
    assert (error.status, error.retryable, error.provider, retry_after) == (429, True, "openai", 2.0)
    # the provider's words stay out of the message (it is returned and stored); the operator's log has them
    assert error.message == "openai returned HTTP 429" and error.upstream_message == "slow down"
    denied = anthropic.PermissionDeniedError("no", response=_response(403), body=None)
    classified = classify_sdk_error("anthropic", ANTHROPIC, denied)
    assert classified is not None and (classified[0].status, classified[0].retryable) == (403, False)


def test_openai_error_code_marks_a_context_overflow() -> None:
    body = {"message": "too long", "code": "context_length_exceeded"}
    overflow = openai.BadRequestError("too long", response=_response(400), body=body)
    classified = classify_sdk_error("openai", OPENAI, overflow)
    assert classified is not None and classified[0].context_overflow


@pytest.mark.parametrize(
    ("exc", "message", "retryable"),
    [
        (openai.APITimeoutError(request=REQUEST), "openai timed out", True),
        (openai.APIConnectionError(request=REQUEST), "cannot reach openai", True),
        (openai.OpenAIError("odd"), "openai error: OpenAIError", False),
    ],
)
def test_transport_and_other_sdk_errors(exc: Exception, message: str, retryable: bool) -> None:
    classified = classify_sdk_error("openai", OPENAI, exc)
    assert classified is not None
    error, retry_after = classified
    assert message in error.message and error.retryable is retryable and retry_after is None


def test_foreign_exceptions_are_not_classified() -> None:
    assert classify_sdk_error("openai", OPENAI, ValueError("bug")) is None
    # Another SDK's error is foreign too.
    assert classify_sdk_error("openai", OPENAI, anthropic.AnthropicError("x")) is None


def test_a_stream_failure_is_always_retryable() -> None:
    denied = LLMError("bad request", provider="openai", status=400, retryable=False)
    error = stream_failure("openai", (denied, None), RuntimeError())
    assert error is denied and error.retryable


def test_a_connection_dropped_midstream_is_a_retryable_break() -> None:
    error = stream_failure("groq", None, httpx2.RemoteProtocolError("peer closed"))
    assert error is not None and error.retryable and error.provider == "groq"
    assert "groq stream broke off: RemoteProtocolError: peer closed" in error.message
    assert stream_failure("groq", None, ConnectionResetError()) is not None


def test_a_bug_while_reading_is_not_disguised_as_a_provider_error() -> None:
    assert stream_failure("openai", None, AttributeError("x")) is None
