"""A failure that every request sees at once (Redis down, the database down) is logged at most
once per period per process, with the count of the records left out; not once per request."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

#: Seconds between two full records of one recurring failure.
PERIOD = 60.0


class ThrottledLog:
    def __init__(self, logger: logging.Logger, period: float = PERIOD) -> None:
        self.logger = logger
        self.period = period
        self._lock = threading.Lock()
        self._last = -period
        self._left_out = 0

    def log(self, level: int, message: str, *args: Any, exc_info: Any = None) -> bool:
        """Log ``message`` (plus how many were left out since the last one) unless one was
        logged less than ``period`` seconds ago; True if it was logged."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.period:
                self._left_out += 1
                return False
            left_out, self._last, self._left_out = self._left_out, now, 0
        self.logger.log(level, f"{message} (%d similar left out)", *args, left_out, exc_info=exc_info)
        return True
