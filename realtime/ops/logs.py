"""
Keeping credentials out of logs: ``RedactSecrets``, a logging filter on every handler
(config/settings.py ``LOGGING``).

Tokens travel in ``?token=`` query strings and ``Authorization`` headers (docs/protocol.md), and
any log line that quotes a URL, a scope or a header would carry them. The filter rewrites each
record's final message, with its arguments already merged, so no formatter sees the secret.
"""

import logging
import re

_PATTERNS = [
    # ?token=... / &access=... / refresh=... in URLs and query strings
    (
        re.compile(r"((?:^|[?&;\s'\"])(?:token|access|refresh|access_token|refresh_token)=)[^&\s'\";]+", re.I),
        r"\1[redacted]",
    ),
    # Authorization: Bearer xxx / b'authorization', b'Bearer xxx' / "Authorization": "JWT xxx"
    (
        re.compile(r"(authorization['\"]?\s*[:,=]\s*(?:b?['\"])?\s*(?:bearer|jwt|token|basic)?\s*)[^\s'\",)]+", re.I),
        r"\1[redacted]",
    ),
    # JWTs anywhere else: three base64url parts, the first starting with {" encoded ("eyJ")
    (re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}"), "[redacted-jwt]"),
]


def redact(text: str) -> str:
    """Return ``text`` with token query values, Authorization header values and JWTs replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Replace the record's message by its redacted form (``record.msg``, args merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
