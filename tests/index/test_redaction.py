"""The redaction rule: configured secrets in any case and in fragments, credential shapes,
and every log record (message and traceback) once installed."""

from __future__ import annotations

import logging

import pytest

from index.redaction import install_log_redaction, redact, redact_url, url_secrets

SECRET = "Zq7-wKp3Lm9xT"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://ann:pw0rd@10.0.0.1:8000/x", "GET http://***@10.0.0.1:8000/x"),
        ('{"Authorization": "Bearer abc.def-123456"}', '{"Authorization": "*** ***"}'),
        ("key sk-proj-abcdEFGH1234 refused", "key *** refused"),
        ("sk-abc***********wxyz is wrong", "*** is wrong"),
        ("MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123", "***"),
        ("api_key=abcd1234&x=1", "api_key=***&x=1"),
        (
            "basic information, max_tokens=512, token: 42",
            "basic information, max_tokens=512, token: 42",
        ),
    ],
)
def test_credential_shapes_are_masked_and_ordinary_text_is_not(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_configured_secret_is_masked_in_any_case_and_in_fragments() -> None:
    text = f"echo {SECRET.upper()} then {SECRET[:7]} cut"

    masked = redact(text, [SECRET])

    # What is left of a cut secret is shorter than a fragment.
    assert masked == f"echo *** then ***{SECRET[6]} cut"


def test_url_helpers() -> None:
    assert redact_url("https://u:p@host:1/v1") == "https://***@host:1/v1"
    assert redact_url("https://host/v1") == "https://host/v1"
    assert url_secrets("https://u:p4ss@host") == ["p4ss"]
    assert url_secrets("https://t0ken@host") == ["t0ken"]
    assert url_secrets(None) == []


def test_installed_redaction_masks_every_record_with_its_arguments_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction([SECRET])
    log = logging.getLogger("citebot.test")
    try:
        raise RuntimeError(f"failed with {SECRET.lower()}")
    except RuntimeError:
        log.exception("calling %s with %s", "http://a:b@h/", SECRET)

    assert "calling http://***@h/ with ***" in caplog.text
    assert "failed with ***" in caplog.text
    assert SECRET.lower()[:6] not in caplog.text.lower()


def test_a_registered_secret_inside_a_token_does_not_leave_the_token_readable() -> None:
    # Registered for the logs by an earlier command (the global, as the CLI and bot install it).
    install_log_redaction(["abcdefghijklmnop-registered"])
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123"
    assert redact(f"login with {token} failed") == "login with *** failed"
