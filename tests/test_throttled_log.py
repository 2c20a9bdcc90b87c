import logging

from wechat_oauth import throttled_log
from wechat_oauth.throttled_log import ThrottledLog


def test_one_record_per_period_then_the_count_of_those_left_out(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(throttled_log.time, "monotonic", lambda: clock[0])
    throttle = ThrottledLog(logging.getLogger("wechat_oauth.test"), period=60)

    with caplog.at_level(logging.WARNING, logger="wechat_oauth.test"):
        logged = [throttle.log(logging.WARNING, "redis %s down", "A") for _ in range(5)]
        clock[0] += 59.9
        logged.append(throttle.log(logging.WARNING, "redis %s down", "A"))
        clock[0] += 0.1
        logged.append(throttle.log(logging.WARNING, "redis %s down", "A"))

    assert logged == [True, False, False, False, False, False, True]
    assert [record.getMessage() for record in caplog.records] == [
        "redis A down (0 similar left out)",
        "redis A down (5 similar left out)",
    ]
