"""Find personal data (emails, phone numbers, card numbers, IP addresses, URLs) and replace it with
typed placeholders such as ``[EMAIL]``.

Patterns lean towards precision: a 16-digit number that fails the Luhn check, a date, a year range
or an impossible IP address stays as it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable

PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "ip": "[IP]", "url": "[URL]"}

_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes
_CARD = re.compile(r"(?<![\d.,])\d(?:[ -]?\d){12,18}(?![\d]|[.,]\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}(?![\w]|[.,-]\d)"
)
_HINT = re.compile(r"\d|@|www\.|://", re.IGNORECASE)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> bool:
    return luhn_ok(re.sub(r"\D", "", m.group()))


def _ipv4(m: re.Match[str]) -> bool:
    return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in m.group().split("."))


def _ipv6(m: re.Match[str]) -> bool:
    try:
        ipaddress.IPv6Address(m.group())
    except ValueError:
        return False
    return True


def _phone(m: re.Match[str]) -> bool:
    s = m.group()
    digits = re.sub(r"\D", "", s)
    if not 7 <= len(digits) <= 15 or _DATE.match(s):
        return False
    groups = len(re.findall(r"\d+", s))
    # Without a country code or area-code brackets, ask for three groups (555-123-4567) so that
    # year ranges (1999-2004) and plain numbers are not taken for phone numbers.
    return s.startswith("+") or "(" in s or groups >= 3


# Order matters: URLs contain emails and IPs, card numbers look like phone numbers, IPs like phones.
_DETECTORS: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None]] = [
    ("url", _URL, None),
    ("email", _EMAIL, None),
    ("card", _CARD, _card),
    ("ip", _IPV4, _ipv4),
    ("ip", _IPV6, _ipv6),
    ("phone", _PHONE, _phone),
]


def _trim_url(s: str) -> tuple[str, str]:
    """A URL at the end of a sentence should not swallow the full stop."""
    core = s.rstrip(".,;:!?")
    return core, s[len(core) :]


class PiiScrubber:
    """Replace the chosen kinds of personal data; count what was found and keep a few examples."""

    def __init__(self, types: Iterable[str] = PLACEHOLDERS, max_examples: int = 5) -> None:
        self.types = set(types)
        self.counts: Counter[str] = Counter()
        self.examples: list[dict[str, str]] = []
        self.max_examples = max_examples

    def __call__(self, text: str) -> str:
        if not _HINT.search(text):  # every pattern needs a digit, an @ or a URL prefix
            return text
        for kind, pattern, check in _DETECTORS:
            if kind not in self.types:
                continue
            text = pattern.sub(lambda m, k=kind, c=check: self._replace(m, k, c), text)
        return text

    def _replace(self, m: re.Match[str], kind: str, check: Callable[[re.Match[str]], bool] | None) -> str:
        found, tail = _trim_url(m.group()) if kind == "url" else (m.group(), "")
        if check is not None and not check(m):
            return m.group()
        self.counts[kind] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append({"type": kind, "found": mask(found)})
        return PLACEHOLDERS[kind] + tail


def mask(s: str) -> str:
    """Show enough to recognise the kind of value in the report, not enough to recover it."""
    if len(s) <= 4:
        return "*" * len(s)
    keep = max(2, len(s) // 5)
    return s[:keep] + "*" * (len(s) - 2 * keep) + s[-keep:]


def scrub(text: str, types: Iterable[str] = PLACEHOLDERS) -> str:
    """Scrub one text (convenience for callers outside the data stage)."""
    return PiiScrubber(types)(text)
