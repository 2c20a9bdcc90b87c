"""Hostile bodies at a Mini Program's ``<app>/session/``: each is a JSON error (400, 405 or
415), never a 500 or an HTML page, and costs nothing: no OAuthCodeUse row, no account, no call
to WeChat, no budget spent.

Wherever the body could carry a code, it carries a genuine one (``@CODE@``): a refusal that let
it through would log in, and the fake's counters would show the call.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client, RequestFactory

from tests.test_mini_program import MINI_APP_ID, SESSION, mini  # noqa: F401 (the fixture)
from wechat_oauth.budget import CodeBudget
from wechat_oauth.exceptions import BadCallback, UnsupportedMediaType
from wechat_oauth.jsonbody import MAX_DEPTH, SESSION_BODY_MAX_BYTES, read_json_object
from wechat_oauth.models import OAuthCodeUse, WeChatAccount

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mini")]

JSON = "application/json"
#: Replaced by a code the fake issued for this test.
CODE = b"@CODE@"
#: Django's default DATA_UPLOAD_MAX_MEMORY_SIZE is 2.5 MiB: a body past it.
HUGE = 3 * 1024 * 1024
#: The length of the fake's js codes (checked by the ``code`` fixture).
CODE_LENGTH = 32


def padded(size: int) -> bytes:
    """``{"code": "@CODE@", "pad": "xxx…"}`` of exactly ``size`` bytes once the code is in."""
    head, tail = b'{"code": "@CODE@", "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail) + len(CODE) - CODE_LENGTH) + tail


def nested(depth: int) -> bytes:
    """The code beside a value nested so that the body is ``depth`` levels deep."""
    inner = depth - 1
    return b'{"code": "@CODE@", "x": ' + b"[" * inner + b"]" * inner + b"}"


@pytest.fixture
def code(fake_wechat) -> str:
    issued = fake_wechat.issue_js_code(MINI_APP_ID, person="mallory")
    assert len(issued) == CODE_LENGTH
    return issued


@pytest.fixture
def budget_calls(monkeypatch) -> list[str]:
    """The names of the CodeBudget methods called (a refused body must charge nothing)."""
    calls: list[str] = []
    for name in ("admit", "charge"):
        original = getattr(CodeBudget, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(CodeBudget, name, spy)
    return calls


def send(body: bytes, code: str, content_type: str | None = JSON, method: str = "POST", **extra):
    client = Client(raise_request_exception=False)
    data = body.replace(CODE, code.encode())
    if content_type is None:
        return client.generic(method, SESSION, data, **extra)
    return client.generic(method, SESSION, data, content_type=content_type, **extra)


def assert_refused(response, status: int, error: str, fake, code: str, budget_calls) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error
    assert OAuthCodeUse.objects.count() == 0
    assert WeChatAccount.objects.count() == 0
    assert fake.exchange_calls(code) == 0
    assert fake.calls("jscode2session") == 0
    assert budget_calls == []


BAD_BODIES = [
    ("not-json", b"not json"),
    ("truncated", b'{"code": "@CODE@"'),
    ("trailing-garbage", b'{"code": "@CODE@"} x'),
    ("two-objects", b'{"code": "@CODE@"}{"code": "@CODE@"}'),
    ("single-quotes", b"{'code': '@CODE@'}"),
    ("invalid-utf8", b'{"code": "@CODE@", "x": "\xff\xfe"}'),
    ("lone-continuation-byte", b'\x80{"code": "@CODE@"}'),
    ("overlong-utf8", b'{"code": "@CODE@", "x": "\xc0\xaf"}'),
    ("utf16", '{"code": "@CODE@"}'.encode("utf-16")),
    ("utf8-bom", b'\xef\xbb\xbf{"code": "@CODE@"}'),
    ("array", b'["@CODE@"]'),
    ("array-of-object", b'[{"code": "@CODE@"}]'),
    ("string", b'"@CODE@"'),
    ("number", b"12"),
    ("null", b"null"),
    ("true", b"true"),
    ("nan-beside-the-code", b'{"code": "@CODE@", "x": NaN}'),
    ("infinity-beside-the-code", b'{"code": "@CODE@", "x": -Infinity}'),
    ("repeated-key", b'{"code": "a", "code": "@CODE@"}'),
    ("repeated-key-same-value", b'{"code": "@CODE@", "code": "@CODE@"}'),
    ("repeated-key-escaped", b'{"code": "@CODE@", "\\u0063ode": "b"}'),
    ("repeated-key-nested", b'{"code": "@CODE@", "x": {"a": 1, "a": 2}}'),
    ("deeper-than-the-limit", nested(MAX_DEPTH + 1)),
    ("depth-bomb-within-the-size-limit", nested(2000)),
    ("depth-bomb-100k", b"[" * 100_000 + b"]" * 100_000),
    ("object-bomb-100k", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("one-byte-too-big", padded(SESSION_BODY_MAX_BYTES + 1)),
    ("past-data-upload-max-memory-size", padded(HUGE)),
]


@pytest.mark.parametrize("body", [body for _, body in BAD_BODIES], ids=[name for name, _ in BAD_BODIES])
def test_a_body_that_is_not_one_small_json_object_is_a_400(fake_wechat, code, budget_calls, body):
    assert_refused(send(body, code), 400, "bad_callback", fake_wechat, code, budget_calls)


BAD_CODES = [
    ("missing", {}),
    ("other-key", {"Code": "@CODE@"}),
    ("number", {"code": 12}),
    ("float", {"code": 1.5}),
    ("list", {"code": ["@CODE@"]}),
    ("object", {"code": {"code": "@CODE@"}}),
    ("null", {"code": None}),
    ("true", {"code": True}),
    ("false", {"code": False}),
    ("empty", {"code": ""}),
    ("too-long", {"code": "x" * 513}),
    ("far-too-long", {"code": "x" * 4000}),
    ("space", {"code": "@CODE@ "}),
    ("newline", {"code": "@CODE@\n"}),
    ("tab", {"code": "\t@CODE@"}),
    ("nul", {"code": "@CODE@\u0000"}),
    ("del", {"code": "@CODE@\u007f"}),
    ("escape", {"code": "\u001b[31m"}),
    ("non-ascii", {"code": "码"}),
    ("accented", {"code": "caf\u00e9"}),
    ("zero-width-space", {"code": "@CODE@\u200b"}),
    ("fullwidth-letters", {"code": "\uff41\uff42\uff43"}),
    ("lone-surrogate", {"code": "\ud800"}),
]


@pytest.mark.parametrize("value", [value for _, value in BAD_CODES], ids=[name for name, _ in BAD_CODES])
def test_a_code_that_cannot_be_a_wechat_code_is_a_400(fake_wechat, code, budget_calls, value):
    body = json.dumps(value).encode()  # ensure_ascii: \u escapes, so the JSON itself is fine

    assert_refused(send(body, code), 400, "invalid_code", fake_wechat, code, budget_calls)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"code=@CODE@"),
        ("application/x-www-form-urlencoded", b'{"code": "@CODE@"}'),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="code"\r\n\r\n@CODE@\r\n--B--\r\n',
        ),
        ("text/plain", b'{"code": "@CODE@"}'),
        ("text/json", b'{"code": "@CODE@"}'),
        ("application/jsonx", b'{"code": "@CODE@"}'),
        ("application/ld+json", b'{"code": "@CODE@"}'),
        ("", b'{"code": "@CODE@"}'),  # none at all: Django reads an absent one as ""
        (None, b'{"code": "@CODE@"}'),  # the test client's default, application/octet-stream
    ],
    ids=[
        "form",
        "json-labelled-form",
        "multipart",
        "text-plain",
        "text-json",
        "jsonx",
        "ld-json",
        "empty",
        "octet-stream",
    ],
)
def test_a_body_not_declared_json_is_a_415(fake_wechat, code, budget_calls, content_type, body):
    assert_refused(
        send(body, code, content_type), 415, "unsupported_media_type", fake_wechat, code, budget_calls
    )


@pytest.mark.parametrize("declared", ["1000000000", str(SESSION_BODY_MAX_BYTES + 1), "-1", "ten", "1e3"])
def test_a_content_length_too_large_or_not_a_number_is_refused_before_reading(
    fake_wechat, code, budget_calls, declared
):
    response = send(b'{"code": "@CODE@"}', code, CONTENT_LENGTH=declared)

    assert_refused(response, 400, "bad_callback", fake_wechat, code, budget_calls)


def test_a_lower_data_upload_max_memory_size_is_the_limit(fake_wechat, code, budget_calls, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    assert_refused(send(padded(101), code), 400, "bad_callback", fake_wechat, code, budget_calls)
    assert send(padded(100), code).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_another_method_is_a_json_405(fake_wechat, code, budget_calls, method):
    response = send(b'{"code": "@CODE@"}', code, method=method)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response["Content-Type"] == "application/json"
    if method != "HEAD":
        assert response.json()["error"] == "method_not_allowed"
    assert OAuthCodeUse.objects.count() == 0
    assert fake_wechat.calls("jscode2session") == 0 and budget_calls == []


@pytest.mark.parametrize(
    "content_type, body",
    [
        (JSON, b'{"code": "@CODE@"}'),
        ("application/json; charset=utf-8", b'{"code": "@CODE@"}'),
        ("Application/JSON", b'{"code": "@CODE@"}'),
        (JSON, b' \r\n\t{"code": "@CODE@"}\n'),
        (JSON, b'{"code": "@CODE@", "extra": {"nested": [1, 2, {"a": null}]}}'),
        (JSON, b'{"code": "@CODE@", "a": {"code": "other"}}'),  # one key per object
        (JSON, nested(MAX_DEPTH)),
        (JSON, padded(SESSION_BODY_MAX_BYTES)),
    ],
    ids=[
        "json",
        "charset",
        "upper-case",
        "whitespace",
        "extra-fields",
        "same-key-in-another-object",
        "at-the-depth-limit",
        "at-the-size-limit",
    ],
)
def test_what_a_front_end_sends_is_accepted(fake_wechat, code, content_type, body):
    """The refusals above refuse nothing a genuine front end sends."""
    response = send(body, code, content_type)

    assert response.status_code == 200, response.content
    assert response.json()["user_id"] == WeChatAccount.objects.get().user_id
    assert fake_wechat.exchange_calls(code) == 1


# -- read_json_object on its own ------------------------------------------------------------------

rf = RequestFactory()


def test_a_depth_bomb_is_refused_whatever_the_size_limit():
    bomb = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):  # what json.loads alone does with it
        json.loads(bomb)

    request = rf.post("/", bomb, content_type=JSON)
    with pytest.raises(BadCallback, match="deeper"):
        read_json_object(request, max_bytes=len(bomb))


def test_brackets_inside_strings_do_not_count_as_depth():
    body = json.dumps({"code": "c", "x": "[" * 1000 + '\\"{' * 100}).encode()

    assert read_json_object(rf.post("/", body, content_type=JSON), max_bytes=10_000)["code"] == "c"


def test_a_body_larger_than_its_content_length_says_is_refused_after_reading():
    """Content-Length absent or understated where the server hands over the whole body (ASGI
    with chunked encoding, a middleware that read it): the size is checked again."""
    request = rf.post("/", b"{}", content_type=JSON)
    del request.META["CONTENT_LENGTH"]
    request._body = b'{"code": "' + b"x" * 100 + b'"}'

    with pytest.raises(BadCallback, match="larger"):
        read_json_object(request, max_bytes=50)
    assert read_json_object(request, max_bytes=200) == {"code": "x" * 100}


def test_an_empty_body_is_an_empty_object_and_the_typed_errors_are_what_the_views_map():
    # (The test client, like a browser, sends no Content-Type without a body: give it one.)
    assert read_json_object(rf.generic("POST", "/", b"", CONTENT_TYPE=JSON), max_bytes=10) == {}
    with pytest.raises(UnsupportedMediaType):
        read_json_object(rf.generic("POST", "/", b""), max_bytes=10)
    with pytest.raises(UnsupportedMediaType):
        read_json_object(rf.post("/", b"{}", content_type="text/plain"), max_bytes=10)
    assert issubclass(UnsupportedMediaType, BadCallback)


def test_padded_bodies_have_the_size_they_name():
    assert len(padded(SESSION_BODY_MAX_BYTES).replace(CODE, b"c" * CODE_LENGTH)) == SESSION_BODY_MAX_BYTES
