"""Secrets never leave the gateway: provider credentials from the config (API keys,
secret and session keys, extra header values) and the store's password are replaced by
`[redacted]` in every error answer, every stream error event and every log record,
whatever put them there (an upstream that echoes the key it was sent, an exception text).

Gateway keys need no such care: the gateway knows only their hashes, never echoes the key a
client presented, and shows a minted key only once, in the answer that created it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import msgspec

from providers.errors import SwitchboardError

MASK = "[redacted]"
MIN_LENGTH = 6  # shorter values would mask ordinary words
_SECRET_FIELDS = ("key", "secret", "token", "password")

_lock = threading.Lock()
_registered: Counter[str] = Counter()
_pattern: re.Pattern[str] | None = None
_factory_installed = False


def secrets_in(providers: Iterable[Any], store_url: str) -> set[str]:
    """The credential values of these provider configs, and the store URL's password."""
    found: set[str] = set()
    for config in providers:
        for field in getattr(config, "__struct_fields__", ()):
            value = getattr(config, field)
            if isinstance(value, str) and any(word in field for word in _SECRET_FIELDS):
                found.add(value)
            elif field == "headers" and isinstance(value, dict):
                found.update(v for v in value.values() if isinstance(v, str))
    password = urlsplit(store_url).password
    if password:
        found.add(password)
    return {s for s in found if len(s) >= MIN_LENGTH}


def register(secrets: Iterable[str]) -> None:
    """Redact these from now on (every app in this process adds its own)."""
    global _factory_installed
    with _lock:
        _registered.update(secrets)
        _rebuild()
        if not _factory_installed:
            _install_log_redaction()
            _factory_installed = True


def unregister(secrets: Iterable[str]) -> None:
    with _lock:
        _registered.subtract(secrets)
        for secret in [s for s, n in _registered.items() if n <= 0]:
            del _registered[secret]
        _rebuild()


def _rebuild() -> None:
    global _pattern
    values = sorted(_registered, key=len, reverse=True)  # the longest wins an overlap
    _pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None


def redact(text: str) -> str:
    pattern = _pattern
    return text if pattern is None or not text else pattern.sub(MASK, text)


def scrub(error: SwitchboardError) -> SwitchboardError:
    """The error with every secret taken out of what the client will read."""
    if _pattern is not None:
        error.message = redact(error.message)
        if error.code:
            error.code = redact(error.code)
        if error.param:
            error.param = redact(error.param)
        for name, value in error.headers.items():
            error.headers[name] = redact(value)
        attempts = getattr(error, "attempts", None)
        if attempts:  # failed tries name their error codes, which upstreams may choose
            for i, attempt in enumerate(attempts):
                attempts[i] = msgspec.structs.replace(attempt, error=redact(attempt.error))
    return error


def _install_log_redaction() -> None:
    """Every log record, from any library, is redacted when it is made: its message with
    its arguments merged in, and its exception text."""
    make = logging.getLogRecordFactory()

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _pattern is None:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logging module's to report
            return record
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting)
