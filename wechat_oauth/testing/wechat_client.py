"""What WeChat's in-app browser does to a callback, for tests and benchmarks of a site.

WeChat's client sends the callback, aborts it ~20 ms later, and sends it again with extra
``uin``, ``key`` and ``pass_ticket`` parameters (see docs/04-exactly-once.rst):
:func:`send_and_abort` is the aborted request (:func:`send_unread` sends it and leaves it open),
:func:`resend_params` the re-send's additions. Both also send a POST with a body (``method``,
``body``, ``content_type``): a Mini Program's ``wx.request`` whose task is aborted, or whose
answer is lost, before it retries.
"""

from __future__ import annotations

import base64
import secrets
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

#: A User-Agent of WeChat's in-app browser (``MicroMessenger`` is what sites look for).
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.50"
)


def resend_params() -> str:
    """The query WeChat adds when it re-sends an aborted callback.

    Shaped like the observed one: ``uin`` base64 and percent-encoded, ``key`` hex,
    ``pass_ticket`` base64 left raw (``+``, ``/``, ``=`` unencoded), as WeChat sends it.
    """
    uin = quote(base64.b64encode(str(secrets.randbelow(9 * 10**9) + 10**9).encode()).decode(), safe="")
    key = secrets.token_hex(48)
    pass_ticket = base64.b64encode(secrets.token_bytes(48)).decode()
    return f"uin={uin}&key={key}&pass_ticket={pass_ticket}"


def send_unread(
    url: str,
    cookies: Iterable[Any] = (),
    *,
    user_agent: str = WECHAT_USER_AGENT,
    timeout: float = 20.0,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "application/json",
) -> socket.socket:
    """Send ``method`` ``url`` over a raw socket and return the socket, the answer unread (the
    caller closes it).

    ``cookies`` are objects with ``name`` and ``value`` (a requests cookie jar); an empty
    ``user_agent`` sends no User-Agent header. A ``body`` (or any method but GET and HEAD) is
    sent whole, with its Content-Length and ``content_type``.
    """
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    if user_agent:
        head.append(f"User-Agent: {user_agent}")
    head.append("Connection: close")
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies)
    if cookie:
        head.append(f"Cookie: {cookie}")
    if body or method not in ("GET", "HEAD"):
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)
    except BaseException:
        sock.close()
        raise
    return sock


def send_and_abort(
    url: str,
    cookies: Iterable[Any] = (),
    *,
    abort_after: float = 0.005,
    user_agent: str = WECHAT_USER_AGENT,
    timeout: float = 20.0,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "application/json",
) -> None:
    """Send ``method`` ``url`` over a raw socket and hang up ``abort_after`` seconds later,
    unread.

    The server still handles the request (it learns of the hang-up only when it answers),
    just as with WeChat's aborted first callback. ``cookies``, ``user_agent``, ``method``,
    ``body`` and ``content_type`` as for :func:`send_unread`.
    """
    sock = send_unread(
        url,
        cookies,
        user_agent=user_agent,
        timeout=timeout,
        method=method,
        body=body,
        content_type=content_type,
    )
    try:
        time.sleep(abort_after)
    finally:
        sock.close()
