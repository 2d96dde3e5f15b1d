"""Logging that never carries a secret: a filter redacts PEM blocks, URL passwords
and any value registered with `register_secret` (a last line of defence; code
should not log secrets in the first place).
"""

from __future__ import annotations

import logging
import re
import sys
import threading

_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@/\s]+@", re.I)
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Redact this exact value wherever it would appear in a log record."""
    if len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    text = _PEM.sub("[private key redacted]", text)
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, "***")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so a handler never sees the raw one.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_redaction(handler: logging.Handler) -> logging.Handler:
    handler.addFilter(RedactingFilter())
    return handler


def enable_debug_logging() -> None:
    handler = install_redaction(logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
