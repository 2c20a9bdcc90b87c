"""A Mini Program's open data as WeChat encrypts it, for tests: the mirror of
:func:`wechat_oauth.decrypt.decrypt_user_data`.

``encrypt_user_data(session_key, {"phoneNumber": ...}, app_id=...)`` adds the watermark and
answers ``(encryptedData, iv)``, both base64, as ``getPhoneNumber`` / ``getUserInfo`` hand them
to the front end. Needs ``cryptography`` (the ``test`` and ``miniprogram`` extras).
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

__all__ = ["encrypt_plaintext", "encrypt_user_data"]


def encrypt_user_data(
    session_key: str,
    data: dict[str, Any],
    *,
    app_id: str,
    timestamp: int | None = None,
    iv: bytes | None = None,
) -> tuple[str, str]:
    """``data`` plus ``watermark: {"appid": app_id, "timestamp": ...}`` (now by default) as
    WeChat's compact UTF-8 JSON, encrypted under ``session_key``: ``(encryptedData, iv)``."""
    watermark = {"appid": app_id, "timestamp": int(time.time()) if timestamp is None else timestamp}
    plaintext = json.dumps(
        {**data, "watermark": watermark}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    return encrypt_plaintext(session_key, plaintext, iv=iv)


def encrypt_plaintext(session_key: str, plaintext: bytes, *, iv: bytes | None = None) -> tuple[str, str]:
    """Any ``plaintext``, PKCS#7-padded and AES-128-CBC-encrypted under ``session_key``
    (base64) with ``iv`` (16 random bytes by default): ``(encryptedData, iv)``, base64."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16) if iv is None else iv
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(encrypted).decode("ascii"), base64.b64encode(iv).decode("ascii")
