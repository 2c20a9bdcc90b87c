"""The app secret, codes and tokens never reach error messages, tracebacks or log records."""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from wechat_oauth import redact
from wechat_oauth.client import WeChatClient
from wechat_oauth.exceptions import ERRCODE_CLASSES, WeChatOAuthError
from wechat_oauth.results import TokenResult

SECRET = "tests-app-secret-0123456789abcdef"
CODE = "081CodeFromWeChat0a1B2c3D"
ACCESS_TOKEN = "ACCESS-TOKEN-5f1e2d3c4b5a6978"
REFRESH_TOKEN = "REFRESH-TOKEN-8a7b6c5d4e3f2a1b"
OPENID = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc"
SENSITIVE = (SECRET, CODE, ACCESS_TOKEN, REFRESH_TOKEN)

API = "https://api.weixin.qq.com"
TOKEN_PAYLOAD = {
    "access_token": ACCESS_TOKEN,
    "expires_in": 7200,
    "refresh_token": REFRESH_TOKEN,
    "openid": OPENID,
    "scope": "snsapi_base",
}
# What requests and urllib3 put in their exception text: the full URL, query string included.
LEAKY_URL = (
    f"/sns/oauth2/access_token?appid=wxtestappid0000001&secret={SECRET}&code={CODE}"
    f"&grant_type=authorization_code&access_token={ACCESS_TOKEN}"
    f"&refresh_token={REFRESH_TOKEN}"
)


def leaky_connection_error(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, LEAKY_URL, reason=reason))  # type: ignore[arg-type]


def assert_no_secrets(text: str) -> None:
    for value in SENSITIVE:
        assert value not in text


# -- Every kind of error the client raises ---------------------------------------------------

Call = Callable[[WeChatClient], object]
CALLS: dict[str, tuple[str, Call]] = {
    "exchange_code": ("/sns/oauth2/access_token", lambda c: c.exchange_code(CODE)),
    "refresh": ("/sns/oauth2/refresh_token", lambda c: c.refresh(REFRESH_TOKEN)),
    "userinfo": ("/sns/userinfo", lambda c: c.userinfo(ACCESS_TOKEN, OPENID)),
    "check": ("/sns/auth", lambda c: c.check(ACCESS_TOKEN, OPENID)),
    "jscode2session": ("/sns/jscode2session", lambda c: c.jscode2session(CODE)),
}

ANSWERS: dict[str, dict[str, object]] = {
    "connect-timeout": {
        "body": requests.ConnectTimeout(
            f"HTTPSConnectionPool(host='api.weixin.qq.com', port=443): Max retries exceeded with "
            f"url: {LEAKY_URL} (Caused by ConnectTimeoutError())"
        )
    },
    "read-timeout": {
        "body": requests.ReadTimeout(
            f"HTTPSConnectionPool(host='api.weixin.qq.com', port=443): Read timed out. "
            f"(read timeout=5) url: {LEAKY_URL}"
        )
    },
    "refused": {
        "body": leaky_connection_error(
            NewConnectionError(None, f"Failed to establish a new connection: {LEAKY_URL}")
        )
    },  # type: ignore[arg-type]
    "reset": {
        "body": leaky_connection_error(
            ProtocolError(f"Connection aborted. {LEAKY_URL}", ConnectionResetError(104, "reset"))
        )
    },
    "request-exception": {"body": requests.RequestException(f"Something else: {LEAKY_URL}")},
    "http-502": {"status": 502, "body": f"<html>502 Bad Gateway for {LEAKY_URL}</html>"},
    "html-echoing-url": {"body": f"<html>Proxy error fetching {LEAKY_URL}</html>"},
    "json-array": {"body": json.dumps([SECRET, CODE])},
    "missing-openid": {"json": {"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN}},
    "errcode-unknown": {"json": {"errcode": 99999, "errmsg": "new error, rid: 1a2b"}},
    **{
        f"errcode-{errcode}": {"json": {"errcode": errcode, "errmsg": "nope, rid: 6541f2a3-1b2c"}}
        for errcode in sorted(ERRCODE_CLASSES)
    },
}


# check() answers False (raises nothing) for these.
CHECK_FALSE = {"errcode-40003", "errcode-40014", "errcode-42001"}
CASES = [
    (call, answer)
    for call in sorted(CALLS)
    for answer in sorted(ANSWERS)
    if not (call == "check" and answer in CHECK_FALSE)
]


def raise_error(call: str, answer: str) -> WeChatOAuthError:
    path, function = CALLS[call]
    with responses.RequestsMock() as mock:
        mock.get(API + path, **ANSWERS[answer])
        with pytest.raises(WeChatOAuthError) as excinfo:
            function(WeChatClient())
    return excinfo.value


@pytest.fixture(params=CASES, ids=[f"{call}-{answer}" for call, answer in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def error(case: tuple[str, str]) -> WeChatOAuthError:
    return raise_error(*case)


def test_error_str_contains_no_secret_code_or_token(error: WeChatOAuthError) -> None:
    assert_no_secrets(str(error))


def test_error_repr_contains_no_secret_code_or_token(error: WeChatOAuthError) -> None:
    assert_no_secrets(repr(error))


def test_formatted_traceback_contains_no_secret_code_or_token(error: WeChatOAuthError) -> None:
    assert_no_secrets("".join(traceback.format_exception(error)))


def test_error_is_not_chained_to_the_requests_exception(error: WeChatOAuthError) -> None:
    assert error.__cause__ is None
    assert error.__suppress_context__ is True


def test_requests_exception_is_not_even_reachable_as_context(error: WeChatOAuthError) -> None:
    # Error reporters that walk __context__ regardless of __suppress_context__ find nothing.
    assert error.__context__ is None


@pytest.mark.parametrize("call", sorted(CALLS))
def test_error_message_names_the_endpoint_path_for_transport_failures(call: str) -> None:
    path, _ = CALLS[call]

    assert path in str(raise_error(call, "read-timeout"))


# -- Real connections: what requests itself would have put in the traceback -----------------


@pytest.fixture
def refusing_base_url() -> Iterator[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def silent_base_url() -> Iterator[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def real_error(base_url: str, timeout: tuple[float, float]) -> WeChatOAuthError:
    client = WeChatClient(api_base_url=base_url, timeout=timeout)
    with pytest.raises(WeChatOAuthError) as excinfo:
        client.exchange_code(CODE)
    return excinfo.value


def test_real_refused_connection_error_leaks_nothing(refusing_base_url: str) -> None:
    error = real_error(refusing_base_url, (2, 2))

    assert_no_secrets(str(error) + repr(error) + "".join(traceback.format_exception(error)))
    assert error.__cause__ is None and error.__context__ is None


def test_real_read_timeout_error_leaks_nothing(silent_base_url: str) -> None:
    error = real_error(silent_base_url, (2, 0.2))

    assert_no_secrets(str(error) + repr(error) + "".join(traceback.format_exception(error)))
    assert error.__cause__ is None and error.__context__ is None


# -- Results ---------------------------------------------------------------------------------


def test_token_result_repr_shows_no_token() -> None:
    result = TokenResult.from_payload(TOKEN_PAYLOAD)

    text = repr(result) + str(result)

    assert ACCESS_TOKEN not in text
    assert REFRESH_TOKEN not in text
    assert OPENID in text


def test_client_repr_shows_no_secret() -> None:
    assert SECRET not in repr(WeChatClient())


# -- Logs of a real HTTP call ----------------------------------------------------------------


class FakeWeChat(BaseHTTPRequestHandler):
    """Answers the token exchange like WeChat does (JSON labelled text/plain)."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        if url.path == "/sns/oauth2/access_token" and params.get("code") == [CODE]:
            body = json.dumps(TOKEN_PAYLOAD).encode()
        else:
            body = b'{"errcode":40029,"errmsg":"invalid code, rid: 1"}'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # the server's own access log would print the query string to stderr


@pytest.fixture
def fake_wechat_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def without_installed_redaction() -> Iterator[None]:
    """Remove the filter the app installed at startup, to prove the client installs it."""
    loggers = [logging.getLogger(name) for name in redact.URL_LOGGERS]
    removed = [logger for logger in loggers if redact._filter in logger.filters]
    for logger in removed:
        logger.removeFilter(redact._filter)
    yield
    for logger in loggers:
        logger.removeFilter(redact._filter)
    for logger in removed:
        logger.addFilter(redact._filter)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="wechat_oauth")
    return caplog


@pytest.mark.usefixtures("without_installed_redaction")
def test_debug_logs_of_a_real_exchange_contain_no_secret_code_or_token(
    fake_wechat_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    result = WeChatClient(api_base_url=fake_wechat_url).exchange_code(CODE)

    assert result.access_token == ACCESS_TOKEN  # the call really went through
    messages = [record.getMessage() for record in debug_logs.records]
    assert messages
    for message in messages:
        assert_no_secrets(message)


@pytest.mark.usefixtures("without_installed_redaction")
def test_urllib3_request_log_shows_redacted_query(
    fake_wechat_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    WeChatClient(api_base_url=fake_wechat_url).exchange_code(CODE)

    urllib3_lines = [r.getMessage() for r in debug_logs.records if r.name.startswith("urllib3")]
    assert any(
        "/sns/oauth2/access_token?" in line and "secret=***" in line and "code=***" in line
        for line in urllib3_lines
    )


def test_client_debug_log_names_the_path(fake_wechat_url: str, debug_logs: pytest.LogCaptureFixture) -> None:
    WeChatClient(api_base_url=fake_wechat_url).exchange_code(CODE)

    client_lines = [r.getMessage() for r in debug_logs.records if r.name == "wechat_oauth.client"]
    assert any("/sns/oauth2/access_token" in line for line in client_lines)


def test_errcode_log_line_contains_no_secret_or_code(
    fake_wechat_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(WeChatOAuthError):
        WeChatClient(api_base_url=fake_wechat_url).exchange_code("wrong" + CODE)

    lines = [r for r in debug_logs.records if r.name == "wechat_oauth.client" and "errcode" in r.getMessage()]
    assert lines
    for record in lines:
        assert_no_secrets(record.getMessage())


# -- redact() --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "secret",
        "appsecret",
        "corpsecret",
        "code",
        "js_code",
        "access_token",
        "refresh_token",
        "session_key",
        "user_ticket",
    ],
)
def test_redact_masks_each_sensitive_parameter(name: str) -> None:
    assert redact.redact(f"/sns/x?{name}=v4lue&openid=o1") == f"/sns/x?{name}=***&openid=o1"


def test_redact_masks_every_sensitive_parameter_of_a_url() -> None:
    assert redact.redact(LEAKY_URL) == (
        "/sns/oauth2/access_token?appid=wxtestappid0000001&secret=***&code=***"
        "&grant_type=authorization_code&access_token=***&refresh_token=***"
    )


def test_redact_keeps_urllib3_log_line_readable() -> None:
    line = (
        f'https://api.weixin.qq.com:443 "GET /sns/oauth2/access_token?appid=wx1&secret={SECRET}'
        f'&code={CODE}&grant_type=authorization_code HTTP/1.1" 200 120'
    )

    assert redact.redact(line) == (
        'https://api.weixin.qq.com:443 "GET /sns/oauth2/access_token?appid=wx1&secret=***'
        '&code=***&grant_type=authorization_code HTTP/1.1" 200 120'
    )


def test_redact_ignores_case_of_parameter_names() -> None:
    assert redact.redact("?SECRET=abc&Code=def") == "?SECRET=***&Code=***"


def test_redact_leaves_parameters_that_only_end_in_a_sensitive_name() -> None:
    text = "?qrcode=abc&auth_code=def&mysecret=ghi&openid=o1"

    assert redact.redact(text) == text


def test_redact_stops_at_fragment_whitespace_and_quotes() -> None:
    assert redact.redact("a?code=c1#frag code=c2 'code=c3' \"code=c4\"") == (
        "a?code=***#frag code=*** 'code=***' \"code=***\""
    )


# A callback URL nested in another URL's query (``next=``, a referrer, a proxy's log line)
# keeps its code behind an encoded ``=``; encoded twice when that URL is nested again.
ENCODED_SEPARATORS = ["%3D", "%3d", "%253D", "%253d"]


@pytest.mark.parametrize("equals", ENCODED_SEPARATORS)
@pytest.mark.parametrize("name", ["secret", "appsecret", "code", "access_token", "refresh_token"])
def test_redact_masks_parameters_behind_an_encoded_equals_sign(name: str, equals: str) -> None:
    assert redact.redact(f"next=%2Fcb%3F{name}{equals}v4lue") == f"next=%2Fcb%3F{name}{equals}***"


def test_redact_masks_the_code_of_a_callback_url_nested_in_next() -> None:
    line = (
        "GET /wechat/login/?next=%2Fwechat%2Fcallback%2F%3Fnext%3D%252Fwhoami%252F"
        f"%26code%3D{CODE}%26state%3D1xYpAb0state HTTP/1.1"
    )

    assert redact.redact(line) == (
        "GET /wechat/login/?next=%2Fwechat%2Fcallback%2F%3Fnext%3D%252Fwhoami%252F"
        "%26code%3D***%26state%3D1xYpAb0state HTTP/1.1"
    )


def test_redact_masks_the_code_of_a_doubly_nested_callback_url() -> None:
    line = f"/a/?next=%2Fb%2F%3Fnext%3D%252Fcb%252F%253Fcode%253D{CODE}%2526state%253DS1%26x%3D1"

    assert redact.redact(line) == (
        "/a/?next=%2Fb%2F%3Fnext%3D%252Fcb%252F%253Fcode%253D***%2526state%253DS1%26x%3D1"
    )


@pytest.mark.parametrize("end", ["%26", "%2526", "&", "#", " ", "'", '"'])
def test_redact_ends_an_encoded_value_at_an_encoded_or_plain_separator(end: str) -> None:
    assert redact.redact(f"x%3Fcode%3D{CODE}{end}state%3DS1") == f"x%3Fcode%3D***{end}state%3DS1"


def test_redact_ends_a_plain_value_at_an_encoded_ampersand() -> None:
    assert redact.redact(f"?code={CODE}%26state=S1") == "?code=***%26state=S1"


def test_redact_masks_an_encoded_code_but_not_names_that_only_end_in_one() -> None:
    text = "next=%2Fx%3Fqrcode%3Dabc%26code%3Dc1%26auth_code%3Ddef%26mysecret%253Dghi%26openid%3Do1"

    assert redact.redact(text) == (
        "next=%2Fx%3Fqrcode%3Dabc%26code%3D***%26auth_code%3Ddef%26mysecret%253Dghi%26openid%3Do1"
    )


def test_redact_leaves_text_without_parameters_alone() -> None:
    line = "GET /sns/auth -> HTTP 200 in 12 ms"

    assert redact.redact(line) == line


def test_redacting_filter_redacts_formatted_arguments() -> None:
    record = logging.LogRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '"%s %s %s"',
        ("GET", f"/x?secret={SECRET}", "HTTP/1.1"),
        None,
    )

    assert redact.RedactingFilter().filter(record) is True
    assert record.getMessage() == '"GET /x?secret=*** HTTP/1.1"'


@pytest.mark.usefixtures("without_installed_redaction")
def test_creating_a_client_installs_the_redacting_filter_once() -> None:
    WeChatClient()
    WeChatClient()

    for name in redact.URL_LOGGERS:
        assert logging.getLogger(name).filters.count(redact._filter) == 1
