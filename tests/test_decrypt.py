"""Decrypting a Mini Program's open data (getPhoneNumber / getUserInfo): WeChat's published
sample, tampering, another app's watermark, malformed input, and errors that never carry the
key, the iv, the data or the plaintext."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from tests.test_mini_program import MINI_APP_ID, post
from tests.test_mini_program import mini as mini  # the fixture, re-exported for this module
from wechat_oauth.decrypt import decrypt_user_data
from wechat_oauth.exceptions import ConfigurationError, DecryptionFailed, error_class_for_key
from wechat_oauth.miniprogram import decrypt, session_key_of
from wechat_oauth.models import WeChatAccount
from wechat_oauth.responses import json_error
from wechat_oauth.testing import openid_for
from wechat_oauth.testing.open_data import encrypt_plaintext, encrypt_user_data

# The sample of WeChat's "开放数据校验与解密" (decryptData) documentation.
APP_ID = "wx4f4bc4dec97d474b"
SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
IV = "r7BXXKkLb8qrSNn05n0qiA=="
ENCRYPTED_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poO"
    "FtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8"
    "xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB"
    "6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJd"
    "NiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOy"
    "uxINew=="
)
EXPECTED = {
    "openId": "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
    "nickName": "Band",
    "gender": 1,
    "language": "zh_CN",
    "city": "Guangzhou",
    "province": "Guangdong",
    "country": "CN",
    "avatarUrl": "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7"
    "GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0",
    "unionId": "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
    "watermark": {"timestamp": 1477314187, "appid": "wx4f4bc4dec97d474b"},
}

#: What no error message may contain: the inputs, and pieces of the sample's plaintext.
SECRETS = (
    SESSION_KEY,
    IV,
    ENCRYPTED_DATA,
    ENCRYPTED_DATA[:24],
    ENCRYPTED_DATA[-24:],
    "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
    "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
    "Guangzhou",
)


def flipped(data: str, index: int) -> str:
    """``data`` (base64) with one bit of its ``index``-th byte flipped."""
    raw = bytearray(base64.b64decode(data))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def raw_cbc(key: str, plaintext: bytes, iv: bytes = b"\x00" * 16) -> tuple[str, str]:
    """AES-128-CBC of ``plaintext`` (whole blocks) with no padding added: for bad paddings."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(iv)).encryptor()
    return (
        base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode(),
        base64.b64encode(iv).decode(),
    )


def failure(session_key: str, encrypted_data: str, iv: str, app_id: str = APP_ID) -> DecryptionFailed:
    with pytest.raises(DecryptionFailed) as caught:
        decrypt_user_data(session_key, encrypted_data, iv, app_id=app_id)
    error = caught.value
    for secret in (*SECRETS, session_key, iv, encrypted_data):
        if secret:
            assert secret not in str(error) and secret not in repr(error)
    # No chained exception either: a UnicodeDecodeError or JSONDecodeError holds the plaintext.
    assert error.__cause__ is None and error.__context__ is None
    return error


# -- WeChat's sample --------------------------------------------------------------------------


def test_wechats_published_sample_decrypts_to_its_published_json():
    assert decrypt_user_data(SESSION_KEY, ENCRYPTED_DATA, IV, app_id=APP_ID) == EXPECTED


def test_a_flipped_byte_in_the_last_block_breaks_the_padding():
    last = len(base64.b64decode(ENCRYPTED_DATA)) - 1

    error = failure(SESSION_KEY, flipped(ENCRYPTED_DATA, last), IV)

    assert "bad padding or wrong key" in str(error)


@pytest.mark.parametrize("index", [0, 5, 16, 200, 383])
def test_a_flipped_byte_in_an_earlier_block_fails_too(index):
    """It garbles its own block (not UTF-8 / not JSON) and flips a byte of the next (the
    padding, when the next is the last)."""
    failure(SESSION_KEY, flipped(ENCRYPTED_DATA, index), IV)


def test_the_wrong_key_fails_as_bad_padding_or_wrong_key():
    error = failure("AAAAAAAAAAAAAAAAAAAAAA==", ENCRYPTED_DATA, IV)

    assert "bad padding or wrong key" in str(error)


def test_another_apps_watermark_is_refused():
    error = failure(SESSION_KEY, ENCRYPTED_DATA, IV, app_id="wxsomeoneelse")

    assert "watermark" in str(error)
    assert "wxsomeoneelse" not in str(error) and APP_ID not in str(error)


def test_a_prefix_of_the_app_id_is_another_app():
    failure(SESSION_KEY, ENCRYPTED_DATA, IV, app_id=APP_ID[:-1])
    failure(SESSION_KEY, ENCRYPTED_DATA, IV, app_id=APP_ID + "x")


# -- Malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "session_key, encrypted_data, iv, reason",
    [
        ("tiihtNczf5v6AKRyjwEUhQ=", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        ("tiihtNczf5v6AKRyjwEUhQ", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        ("tiihtNczf5v6AKRy*wEUhQ==", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        (" tiihtNczf5v6AKRyjwEUhQ==", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        ("tiihtNczf5v6AKRyjwEUhQ==\n", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        ("tiihtNczf5v6AKRyjwEUhR==", ENCRYPTED_DATA, IV, "session_key is not valid base64"),
        ("tiihtNczf5v6AKRyjwEUhQ==", ENCRYPTED_DATA + "=", IV, "encryptedData is not valid base64"),
        (
            "tiihtNczf5v6AKRyjwEUhQ==",
            ENCRYPTED_DATA.replace("+", " "),
            IV,
            "encryptedData is not valid base64",
        ),
        ("tiihtNczf5v6AKRyjwEUhQ==", ENCRYPTED_DATA, "r7BXXKkLb8qrSNn05n0qiA", "iv is not valid base64"),
        ("tiihtNczf5v6AKRyjwEUhQ==", ENCRYPTED_DATA, "r7BXXKkLb8qrSNn05n0qiä==", "iv is not valid base64"),
        (
            "tiihtNczf5v6AKRyjwEUhQ==",
            ENCRYPTED_DATA,
            "r7BXXKkLb8qrSNn05n0qiA==AAAA",
            "iv is not valid base64",
        ),
        (
            "tiihtNczf5v6AKRyjwEUhQ==",
            ENCRYPTED_DATA,
            base64.b64encode(bytes(32)).decode(),
            "iv is not 16 bytes",
        ),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", ENCRYPTED_DATA, IV, "session_key is not 16 bytes"),
        ("AAAAAAAAAAAAAAAAAAAA", ENCRYPTED_DATA, IV, "session_key is not 16 bytes"),
        ("", ENCRYPTED_DATA, IV, "no session_key"),
        (SESSION_KEY, "", IV, "encryptedData is empty"),
        (SESSION_KEY, ENCRYPTED_DATA, "", "iv is not 16 bytes"),
        (SESSION_KEY, ENCRYPTED_DATA[:-4], IV, "encryptedData is not whole AES blocks"),
        (SESSION_KEY, base64.b64encode(b"x" * 17).decode(), IV, "encryptedData is not whole AES blocks"),
    ],
)
def test_malformed_input_is_refused_with_its_reason(session_key, encrypted_data, iv, reason):
    error = failure(session_key, encrypted_data, iv)

    assert reason in str(error)


@pytest.mark.parametrize("argument", [None, 12, b"tiihtNczf5v6AKRyjwEUhQ==", ["x"]])
def test_arguments_that_are_not_text_are_refused(argument):
    for arguments in [
        (argument, ENCRYPTED_DATA, IV),
        (SESSION_KEY, argument, IV),
        (SESSION_KEY, ENCRYPTED_DATA, argument),
    ]:
        with pytest.raises(DecryptionFailed):
            decrypt_user_data(*arguments, app_id=APP_ID)


@pytest.mark.parametrize(
    "plaintext, reason",
    [
        (b"\xff\xfe not UTF-8", "not JSON"),
        (b'{"watermark": ', "not JSON"),
        (b"not json at all", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"phoneNumber": "13580006666"}', "no watermark"),
        (b'{"watermark": "wx4f4bc4dec97d474b"}', "no watermark"),
        (b'{"watermark": {"timestamp": 1477314187}}', "no watermark"),
        (b'{"watermark": {"appid": 12}}', "no watermark"),
        (b'{"watermark": {"appid": "wxsomeoneelse"}}', "watermark names another app"),
    ],
)
def test_a_plaintext_that_is_not_our_apps_json_object_is_refused(plaintext, reason):
    encrypted_data, iv = encrypt_plaintext(SESSION_KEY, plaintext)

    error = failure(SESSION_KEY, encrypted_data, iv)

    assert reason in str(error)


@pytest.mark.parametrize(
    "last_block",
    [
        b"{}" + b"\x00" * 14,  # pad length 0
        b"{}" + b"\x11" * 14,  # pad length 17
        b"\x10" * 15 + b"\xff",  # pad length 255
        b"{}" + b"\x03" * 12 + b"\x04\x02",  # the last byte says 2, the one before disagrees
        b"{}" + b"\x01" * 12 + b"\x02\x03",  # says 3, two of the three disagree
        b"{}" + b"\x05" * 13 + b"\x0e",  # says 14, one of the fourteen disagrees
    ],
)
def test_every_kind_of_bad_padding_is_one_error(last_block):
    encrypted_data, iv = raw_cbc(SESSION_KEY, b'{"a": 123456789}' + last_block)

    error = failure(SESSION_KEY, encrypted_data, iv)

    assert str(error) == "Mini Program data could not be decrypted: bad padding or wrong key"


def test_a_full_block_of_padding_is_valid():
    plaintext = json.dumps({"watermark": {"appid": APP_ID}}, separators=(",", ":")).encode()
    plaintext += b" " * (-len(plaintext) % 16)
    encrypted_data, iv = raw_cbc(SESSION_KEY, plaintext + b"\x10" * 16)

    assert decrypt_user_data(SESSION_KEY, encrypted_data, iv, app_id=APP_ID) == {
        "watermark": {"appid": APP_ID}
    }


@given(st.text(max_size=60), st.text(max_size=200), st.text(max_size=40))
def test_any_text_is_decrypted_or_refused_with_decryption_failed(session_key, data, iv):
    with pytest.raises(DecryptionFailed):
        decrypt_user_data(session_key, data, iv, app_id=APP_ID)


@given(st.binary(min_size=1, max_size=96), st.binary(min_size=16, max_size=16))
def test_any_ciphertext_under_the_right_key_is_refused_with_decryption_failed(data, iv):
    """Random blocks: bad padding, not UTF-8, not JSON, or no watermark; never another error."""
    with pytest.raises(DecryptionFailed):
        decrypt_user_data(
            SESSION_KEY, base64.b64encode(data).decode(), base64.b64encode(iv).decode(), app_id=APP_ID
        )


# -- The error --------------------------------------------------------------------------------


def test_decryption_failed_is_a_400_json_error_whose_body_has_no_reason():
    """The client gets one answer for every failure: no padding oracle for a forger."""
    bodies = set()
    for session_key, data, iv in [
        (SESSION_KEY, flipped(ENCRYPTED_DATA, 399), IV),
        (SESSION_KEY, flipped(ENCRYPTED_DATA, 0), IV),
        (SESSION_KEY, ENCRYPTED_DATA, "bad"),
    ]:
        response = json_error(failure(session_key, data, iv))
        assert response.status_code == 400
        bodies.add(response.content)
    response = json_error(failure(SESSION_KEY, ENCRYPTED_DATA, IV, app_id="wxsomeoneelse"))
    bodies.add(response.content)

    assert len(bodies) == 1
    assert json.loads(bodies.pop())["error"] == "decryption_failed"
    assert DecryptionFailed.key == "decryption_failed"
    assert error_class_for_key("decryption_failed") is DecryptionFailed


def test_the_json_error_speaks_simplified_chinese():
    with translation.override("zh-hans"):
        body = json.loads(json_error(failure(SESSION_KEY, ENCRYPTED_DATA, "bad")).content)

    assert body["error"] == "decryption_failed"
    assert "无法读取小程序发来的数据" in body["message"] and "请重试" in body["message"]


def test_without_cryptography_decrypting_names_the_extra_to_install(monkeypatch):
    for name in [name for name in sys.modules if name.split(".")[0] == "cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)

    with pytest.raises(ConfigurationError) as caught:
        decrypt_user_data(SESSION_KEY, ENCRYPTED_DATA, IV, app_id=APP_ID)

    assert "django-wechat-oauth[miniprogram]" in str(caught.value)


def test_the_module_imports_without_cryptography():
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import wechat_oauth.decrypt\n"
        "try:\n"
        "    wechat_oauth.decrypt.decrypt_user_data('', '', '', app_id='wx')\n"
        "except wechat_oauth.exceptions.ConfigurationError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        env={"PATH": "/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert "django-wechat-oauth[miniprogram]" in result.stdout


def test_an_empty_app_id_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        decrypt_user_data(SESSION_KEY, ENCRYPTED_DATA, IV, app_id="")


# -- miniprogram.decrypt: the stored session_key of a real login ------------------------------


PHONE = {"phoneNumber": "+86 13580006666", "purePhoneNumber": "13580006666", "countryCode": "86"}


def log_in_mini(mini_wechat, person):
    body = post({"code": mini_wechat.issue_js_code(MINI_APP_ID, person=person)}).json()
    return WeChatAccount.objects.get(user_id=body["user_id"], app_id=MINI_APP_ID)


@pytest.mark.django_db(transaction=True)
def test_decrypt_reads_the_accounts_session_key_and_app_id(mini):
    account = log_in_mini(mini, "ivan")
    # What WeChat encrypts with: the session_key of its latest jscode2session for the user.
    wechat_key = mini.session_key_of(MINI_APP_ID, openid_for(MINI_APP_ID, "ivan"))
    assert wechat_key == session_key_of(account)
    encrypted_data, iv = encrypt_user_data(wechat_key, PHONE, app_id=MINI_APP_ID, timestamp=1700000000)

    assert decrypt(account, encrypted_data, iv) == {
        **PHONE,
        "watermark": {"appid": MINI_APP_ID, "timestamp": 1700000000},
    }


@pytest.mark.django_db(transaction=True)
def test_data_from_before_a_new_wx_login_no_longer_decrypts(mini):
    """Every jscode2session rotates the session_key: wx.login() after getPhoneNumber breaks it."""
    account = log_in_mini(mini, "judy")
    encrypted_data, iv = encrypt_user_data(session_key_of(account), PHONE, app_id=MINI_APP_ID)
    log_in_mini(mini, "judy")

    with pytest.raises(DecryptionFailed, match="bad padding or wrong key"):
        decrypt(account, encrypted_data, iv)


@pytest.mark.django_db(transaction=True)
def test_data_of_another_mini_program_is_refused(mini):
    account = log_in_mini(mini, "ken")
    encrypted_data, iv = encrypt_user_data(session_key_of(account), PHONE, app_id="wxanother000000001")

    with pytest.raises(DecryptionFailed, match="watermark names another app"):
        decrypt(account, encrypted_data, iv)


@pytest.mark.django_db(transaction=True)
def test_an_account_without_a_session_key_is_refused(mini):
    from tests.test_several_apps import MP_LOGIN, log_in

    log_in(MP_LOGIN, "lena")
    account = WeChatAccount.objects.get()
    encrypted_data, iv = encrypt_user_data("AAAAAAAAAAAAAAAAAAAAAA==", PHONE, app_id=account.app_id)

    with pytest.raises(DecryptionFailed, match="no session_key"):
        decrypt(account, encrypted_data, iv)
