"""PII scrubbing: a table of positives (replaced by typed placeholders) and near-misses (left alone)."""

from __future__ import annotations

import pytest

from tunelab.data.pii import PiiScrubber, luhn_ok, mask, scrub

POSITIVES = [
    ("write to jane.doe+films@example.co.uk today", "write to [EMAIL] today"),
    ("mail A_B@sub.example.org.", "mail [EMAIL]."),
    ("call 555-123-4567 now", "call [PHONE] now"),
    ("call (020) 7946 0958 please", "call [PHONE] please"),
    ("ring +44 20 7946 0958.", "ring [PHONE]."),
    ("or +1-202-555-0143", "or [PHONE]"),
    ("card 4111 1111 1111 1111 expires", "card [CARD] expires"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("amex 378282246310005 ok", "amex [CARD] ok"),
    ("server at 192.168.0.1 is down", "server at [IP] is down"),
    ("v6 2001:db8::8a2e:370:7334 here", "v6 [IP] here"),
    ("see https://example.com/reviews?id=3.", "see [URL]."),
    ("or www.example.org/page", "or [URL]"),
    ("link (http://x.io/a) inside", "link ([URL]) inside"),
]

NEAR_MISSES = [
    "card 4111 1111 1111 1112 fails Luhn",  # 16 digits, bad checksum
    "order 1234567890123456 is a number",  # 16 digits failing Luhn
    "released 1999-2004 in cinemas",  # a year range
    "on 2023-10-05 it opened",  # an ISO date
    "on 05.10.2023 it opened",  # a European date
    "version 999.1.1.1 is not an IP",  # octet above 255
    "version 1.2.3 of the app",  # three parts only
    "it cost $1,234.56 to make",  # a price
    "rated 4.5 out of 5",
    "at 12:30:45 the film starts",  # a time, not IPv6
    "email me at jane at example dot com",  # obfuscated, not an address
    "the user@localhost account",  # no top-level domain
    "room 101 and 102",
    "a plain sentence with no numbers",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_positives_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_stay(text: str) -> None:
    assert scrub(text) == text


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


def test_types_are_selectable_and_counted() -> None:
    s = PiiScrubber(types=["email"], max_examples=1)
    out = s("a@b.com and 555-123-4567 and c@d.org")
    assert out == "[EMAIL] and 555-123-4567 and [EMAIL]"
    assert s.counts == {"email": 2}
    assert len(s.examples) == 1 and s.examples[0]["type"] == "email"
    assert s.examples[0]["found"] != "a@b.com"  # the report never shows the raw value


def test_mask_hides_the_middle() -> None:
    masked = mask("jane.doe@example.com")
    assert masked.startswith("jane") and masked.endswith(".com") and "doe@exam" not in masked
