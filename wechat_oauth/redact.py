"""Keep secrets out of text that leaves the process: log records, exception messages.

WeChat's API takes the app secret, the code and tokens as query parameters, so any URL of a
request to it (as printed by requests and urllib3) carries them. :func:`redact` masks their
values; :class:`RedactingFilter` applies it to log records of loggers we do not own.
"""

from __future__ import annotations

import logging
import re

SENSITIVE_PARAMETERS = (
    "secret",
    "appsecret",
    "corpsecret",
    "code",
    "js_code",
    "access_token",
    "refresh_token",
    "session_key",
    "user_ticket",
)

# A URL nested in another URL's query (a callback URL in ``next=``) has its ``=`` and ``&``
# percent-encoded once (``%3D``, ``%26``), twice when nested again (``%253D``, ``%2526``).
# A name starts after a character that cannot be part of one, or after a percent-escape
# (``%3F``/``%26``, ``%253F``/``%2526``: the encoded ``?`` and ``&``); ``qrcode`` is not ``code``.
_NAME_START = r"(?:(?<![A-Za-z0-9_])|(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2}))"
_EQUALS = r"(?:=|%3D|%253D)"
# The value ends at ``&``, an encoded ``&``, whitespace, a quote or ``#``.
_VALUE = r"(?:(?!%26|%2526)[^&\s\"'#])+"
_SENSITIVE_QUERY = re.compile(
    rf"(?P<name>{_NAME_START}(?:{'|'.join(SENSITIVE_PARAMETERS)}))(?P<equals>{_EQUALS})"
    rf"(?P<value>{_VALUE})",
    re.IGNORECASE,
)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the value of every sensitive query parameter replaced by ``***``, also
    in a URL nested (percent-encoded, once or twice) in another URL's query."""
    return _SENSITIVE_QUERY.sub(lambda m: f"{m.group('name')}{m.group('equals')}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts sensitive query parameters in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_filter = RedactingFilter()

#: Third-party loggers that write request URLs with their query strings (urllib3 logs
#: "GET /path?query", retries and redirects). A filter on a logger only sees records logged
#: to that very logger, not its children's, so each is listed.
URL_LOGGERS = (
    "django.server",  # runserver's access log: the callback's request line carries the code
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "httpx",  # the async client's: logs every request URL at INFO
    "uvicorn.access",  # uvicorn's access log: the callback's request line
    "urllib3.util.retry",
    "requests.packages.urllib3.connectionpool",
)


def install_url_log_redaction() -> None:
    """Attach the redacting filter to the loggers that print request URLs (idempotent)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
