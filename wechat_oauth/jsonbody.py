"""The request side of the JSON endpoints (the Mini Program's ``<app>/session/``): a body
read as one small JSON object or refused with a typed error, and a JSON 405 for other methods.

What :func:`read_json_object` refuses, before anything is stored or sent to WeChat:

* a Content-Type other than ``application/json`` (parameters such as ``charset`` ignored):
  :class:`~wechat_oauth.exceptions.UnsupportedMediaType` (415);
* a body larger than ``max_bytes`` (or DATA_UPLOAD_MAX_MEMORY_SIZE, if lower), judged from
  Content-Length before a byte is read and again from what was read; a body that is not UTF-8,
  not JSON, not an object, nested deeper than :data:`MAX_DEPTH`, with NaN/Infinity, or with a
  key repeated in any object (``{"code": "a", "code": "b"}`` has no honest meaning: it is not
  "last wins"): :class:`~wechat_oauth.exceptions.BadCallback` (400).

What the object holds (the code) is the caller's to check (``guard.validate_code``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError

from .exceptions import BadCallback, UnsupportedMediaType

__all__ = ["MAX_DEPTH", "SESSION_BODY_MAX_BYTES", "read_json_object", "require_post_json"]

#: The largest body ``<app>/session/`` accepts: ``{"code": "<at most 512 characters>"}`` and
#: room for a few more fields a front end may add.
SESSION_BODY_MAX_BYTES = 4 * 1024
#: The deepest nesting of arrays and objects accepted (the endpoint's object is flat; a depth
#: bomb must be a 400, never a RecursionError).
MAX_DEPTH = 16
#: The media type accepted (RFC 8259: JSON is UTF-8, a charset parameter changes nothing).
JSON_MEDIA_TYPE = "application/json"


class _RepeatedKey(ValueError):
    pass


def read_json_object(request: HttpRequest, *, max_bytes: int) -> dict[str, Any]:
    """The request's body as a JSON object, or the typed error of what is wrong with it.

    An empty body is an empty object (the caller then finds its fields missing)."""
    if (request.content_type or "").lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType("The request body is not declared application/json")
    limit = _limit(max_bytes)
    if _declared_length(request) > limit:
        raise BadCallback(f"The request body is larger than {limit} bytes")
    try:
        body = request.body
    except RequestDataTooBig:
        raise BadCallback("The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE") from None
    except UnreadablePostError:
        raise BadCallback("The request body could not be read") from None
    if len(body) > limit:  # Content-Length absent or understated (ASGI, chunked)
        raise BadCallback(f"The request body is larger than {limit} bytes")
    if not body:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadCallback("The request body is not UTF-8") from None
    if _too_deep(text, MAX_DEPTH):
        raise BadCallback(f"The request body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _RepeatedKey as error:
        raise BadCallback(str(error)) from None
    except (ValueError, RecursionError):
        raise BadCallback("The request body is not JSON") from None
    if not isinstance(value, dict):
        raise BadCallback("The request body is not a JSON object")
    return value


def _limit(max_bytes: int) -> int:
    django_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return max_bytes if django_limit is None else min(max_bytes, django_limit)


def _declared_length(request: HttpRequest) -> int:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except (TypeError, ValueError):
        raise BadCallback("The Content-Length header is not a number") from None
    if length < 0:
        raise BadCallback("The Content-Length header is negative")
    return length


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: an object, unless a key appears twice (in any object)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _RepeatedKey("The request body repeats a key")
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _too_deep(text: str, limit: int) -> bool:
    """Whether arrays and objects outside strings nest deeper than ``limit``."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def require_post_json(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like Django's ``require_POST``, but the 405 is JSON too (``Allow: POST``); for sync and
    async views alike."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def only_post_async(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _refuse_other_methods(request) or await view(request, *args, **kwargs)

        return only_post_async

    @wraps(view)
    def only_post(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _refuse_other_methods(request) or view(request, *args, **kwargs)

    return only_post


def _refuse_other_methods(request: HttpRequest) -> HttpResponse | None:
    if request.method == "POST":
        return None
    response = JsonResponse(
        {"error": "method_not_allowed", "message": "Use POST with a JSON body"}, status=405
    )
    response["Allow"] = "POST"
    return response
