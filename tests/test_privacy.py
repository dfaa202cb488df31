"""Masking of personal data before storage and logging."""

from __future__ import annotations

import pytest

from bot.domain.privacy import MAX_SHARED, for_admins, id_number_valid, luhn_valid, mask
from bot.understanding.language import detect


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证11010519491231002X", "身份证110***********002X"),
        ("卡号 6222 0212 3456 7890 128", "卡号 ***************0128"),
        ("card 4111111111111111 please", "card ************1111 please"),
        ("手机13812345678", "手机138****5678"),
        ("电话 +86 138-1234-5678", "电话 138****5678"),
        ("call +44 20 7946 0958", "call +** ** **** 0958"),
        ("密码是abc123，帮我看看", "密码是******，帮我看看"),
        ("my password: hunter2", "my password: ******"),
        ("支付密码 123456", "支付密码 ******"),
        ("my password is: hunter2", "my password is: ******"),
        ("验证码 385921", "验证码 ******"),
        ("身份证 110105 1949 1231 002X", "身份证 110***********002X"),
        ("ID11010519491231002X", "ID110***********002X"),
        ("手机１３８１２３４５６７８", "手机138****5678"),
        # said to be an ID number or a card: masked whatever the checksum (privacy sweep)
        ("身份证号110105199003070021", "身份证号110***********0021"),
        ("ID number is 24273119831031885X", "ID number is 242***********885X"),
        ("my card number is 6228 8847 6762 6073 090", "my card number is ***************3090"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号 202611240001234567",
        "shipping is free over 99",
        "订单 12345678 已发货",
        "满99包邮",
        "忘记密码了",
        "验证码收不到怎么办",
        "password reset not working",
        "密码是多少",
    ],
)
def test_ordinary_text_and_order_numbers_stay_readable(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # an ID number with a wrong checksum is still one where admins keep texts
        ("身份证号110105199003070021填错了", "身份证号110***********0021填错了"),
        ("发到zhang.wei+shop@mail.example.com吗", "发到z***@mail.example.com吗"),
        ("寄到朝阳区建国路88号阳光小区3栋2单元1501室吗", "寄到[地址]吗"),
        ("我的地址在南京西路1266号", "我的地址在[地址]"),
        ("送到 3栋2单元1501室", "送到 [地址]"),
        ("我住在幸福里小区", "我住在[地址]"),
        ("ship to 221B Baker Street, Apt 4 please", "ship to [address] please"),
        ("手机13812345678", "手机138****5678"),  # and all that is masked everywhere
        # what only looks like it stays
        ("订单号 202611240001234567", "订单号 202611240001234567"),
        ("我想知道12号能到吗", "我想知道12号能到吗"),
        ("渠道5号上线", "渠道5号上线"),
        ("it takes 3 more days way too long", "it takes 3 more days way too long"),
        ("2 items in my cart", "2 items in my cart"),
    ],
)
def test_what_admins_keep_is_masked_more(text: str, kept: str) -> None:
    assert for_admins(text) == kept
    assert for_admins(kept) == kept  # masking twice changes nothing


def test_what_admins_keep_is_cut_and_transcripts_keep_what_agents_need() -> None:
    long = "请问" + "积分能不能抵扣运费，" * 100
    assert len(for_admins(long)) == MAX_SHARED and for_admins(long).endswith("…")
    for text in ["单号110105199003070021", "zhang.wei@example.com", "建国路88号"]:
        assert mask(text) == text


def test_checksums() -> None:
    assert id_number_valid("11010519491231002X")
    assert not id_number_valid("110105194912310021")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_language_detection() -> None:
    assert detect("多久发货") == "zh"
    assert detect("iPhone 充电器坏了") == "zh"
    assert detect("where is my parcel") == "en"
    assert detect("where is my 快递") == "en"
    assert detect("123", default="en") == "en"


def test_log_lines_hold_no_credentials_or_personal_data() -> None:
    """A library's error quotes the URL it called (WeChat's token URL carries the AppSecret,
    every API call the access token); the bot's log formatter blanks them and masks personal
    data, tracebacks included."""
    import logging

    from bot.cli.logs import FORMAT, SafeFormatter

    url = (
        "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential"
        "&appid=wx-test&secret=not-a-real-secret"
    )
    try:
        raise ConnectionError(f"Max retries exceeded with url: {url} (customer 13812345678)")
    except ConnectionError:
        import sys

        record = logging.LogRecord(
            "adapters.wechat",
            logging.ERROR,
            __file__,
            1,
            "send to %s failed: %s",
            ("o-user", "access_token=abc.def&x=1"),
            sys.exc_info(),
        )
    line = SafeFormatter(FORMAT).format(record)
    assert "not-a-real-secret" not in line and "abc.def" not in line
    assert "secret=…" in line and "access_token=…" in line
    assert "13812345678" not in line and "138****5678" in line
    assert "Traceback" in line and "appid=wx-test" in line  # the rest stays readable
