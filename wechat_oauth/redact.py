"""Keep secrets out of text that leaves the process: log records, exception messages.

WeChat's API takes the app secret, the code and tokens as query parameters, so any URL of a
request to it (as printed by requests and urllib3) carries them. :func:`redact` masks their
values; :class:`RedactingFilter` applies it to log records of loggers we do not own.
"""

from __future__ import annotations

import logging
import re

SENSITIVE_PARAMETERS = ("secret", "appsecret", "code", "access_token", "refresh_token")

_SENSITIVE_QUERY = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_])(?:" + "|".join(SENSITIVE_PARAMETERS) + r"))=(?P<value>[^&\s\"'#]+)",
    re.IGNORECASE,
)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the value of every sensitive query parameter replaced by ``***``."""
    return _SENSITIVE_QUERY.sub(lambda m: f"{m.group('name')}={MASK}", text)


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
    "urllib3.util.retry",
    "requests.packages.urllib3.connectionpool",
)


def install_url_log_redaction() -> None:
    """Attach the redacting filter to the loggers that print request URLs (idempotent)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
