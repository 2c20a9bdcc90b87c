"""Decrypting a Mini Program's open data: the ``encryptedData`` and ``iv`` that
``getPhoneNumber`` / ``getUserInfo`` hand the front end.

WeChat encrypts them with AES-128-CBC under the user's ``session_key`` (base64 of the 16-byte
key), the base64 ``iv`` beside them, PKCS#7 padding; the plaintext is a UTF-8 JSON object
whose ``watermark`` (``{"appid": ..., "timestamp": ...}``) names the Mini Program it is for.
:func:`decrypt_user_data` checks every step and raises one error,
:class:`~wechat_oauth.exceptions.DecryptionFailed`, whose message names the reason and never
the key, the iv, the data or the plaintext (no exception is chained to it either: a
``JSONDecodeError`` would hold the plaintext).

The scheme has no MAC: the data is only as trustworthy as its padding, JSON and watermark
checks. Answer every failure the same way (``responses.json_error`` does: one 400 body, the
reason only in the log), so that a client cannot use the server as a padding oracle to forge
data.

``cryptography`` is an optional dependency (``pip install "django-wechat-oauth[miniprogram]"``),
imported on the first call: importing this module never needs it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from .exceptions import ConfigurationError, DecryptionFailed

__all__ = ["decrypt_user_data"]

#: What to install for the decryption.
EXTRA = "django-wechat-oauth[miniprogram]"
#: AES's block, key (AES-128) and iv size in bytes.
BLOCK = 16


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str, *, app_id: str) -> dict[str, Any]:
    """The JSON object of ``encrypted_data``, decrypted with ``session_key`` and ``iv`` (all
    three base64, as WeChat and the front end give them), if its watermark names ``app_id``.

    Raises :class:`~wechat_oauth.exceptions.DecryptionFailed` for any bad input or
    plaintext, :class:`~wechat_oauth.exceptions.ConfigurationError` when ``cryptography`` is
    not installed or ``app_id`` is empty.
    """
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as missing:
        raise ConfigurationError(
            f'Decrypting Mini Program data needs the cryptography package: pip install "{EXTRA}"'
        ) from missing
    if not isinstance(app_id, str) or not app_id:
        raise ConfigurationError("Decrypting Mini Program data needs the Mini Program's app id")

    if not session_key:
        raise _failed("no session_key (the user has not logged in through the Mini Program)")
    key = _decode(session_key, "session_key")
    if len(key) != BLOCK:
        raise _failed(f"session_key is not {BLOCK} bytes")
    iv_bytes = _decode(iv, "iv")
    if len(iv_bytes) != BLOCK:
        raise _failed(f"iv is not {BLOCK} bytes")
    data = _decode(encrypted_data, "encryptedData")
    if not data:
        raise _failed("encryptedData is empty")
    if len(data) % BLOCK:
        raise _failed("encryptedData is not whole AES blocks")

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK * 8).unpadder()
    try:
        plaintext: bytes | None = unpadder.update(padded) + unpadder.finalize()
    except ValueError:  # any bad padding byte, one error: nothing tells which
        plaintext = None
    if plaintext is None:
        raise _failed("bad padding or wrong key")

    try:
        value = json.loads(plaintext.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        value = _NOT_JSON
    if value is _NOT_JSON:
        raise _failed("not JSON")
    if not isinstance(value, dict):
        raise _failed("not a JSON object")

    watermark = value.get("watermark")
    appid = watermark.get("appid") if isinstance(watermark, dict) else None
    if not isinstance(appid, str):
        raise _failed("no watermark")
    if not hmac.compare_digest(appid.encode("utf-8"), app_id.encode("utf-8")):
        raise _failed("watermark names another app")
    return value


_NOT_JSON = object()


def _failed(reason: str) -> DecryptionFailed:
    return DecryptionFailed(f"{DecryptionFailed.default_message}: {reason}")


def _decode(value: object, name: str) -> bytes:
    """Strict base64: the standard alphabet, padded, nothing around it, canonical (the text is
    what encoding the bytes gives back)."""
    raw: bytes | None = None
    if isinstance(value, str) and value.isascii():
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raw = None
    # Raised outside the except clause: no chained exception holding the value.
    if raw is None or base64.b64encode(raw).decode("ascii") != value:
        raise _failed(f"{name} is not valid base64")
    return raw
