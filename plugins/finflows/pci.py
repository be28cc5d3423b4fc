"""Card numbers never leave a flow in full (PCI DSS): mask any PAN to BIN + last four."""

from __future__ import annotations

import re

_PAN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


# a card number as people write it: groups of digits joined by single spaces or dashes
# ("4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005")
_SPACED = re.compile(r"(?<![0-9])[0-9]{2,}(?:[ -][0-9]{2,})+(?![0-9])")
QUICK = re.compile(r"[0-9](?:[ -]?[0-9]){12}")  # 13 digits, maybe with separators: worth a closer look
# what any QUICK match is (13 or more digits, spaces and hyphens, a digit at each end), found without
# QUICK's backtracking over its optional separators: 5-8 times faster on digit-rich text that holds
# no card number (an order code, an invoice number), so it is asked first
_ENOUGH = re.compile(r"[0-9][0-9 -]{11,}[0-9]")


def may_hold_pan(text: str) -> bool:
    """Whether ``text`` is worth ``mask_pans``' closer look: 13 digits in a row or in groups."""
    return _ENOUGH.search(text) is not None and QUICK.search(text) is not None


def _mask_spaced(m: re.Match[str]) -> str:
    text = m.group()
    digits = re.sub(r"[ -]", "", text)
    if not (13 <= len(digits) <= 19 and luhn_ok(digits)):
        return text
    keep = set(range(6)) | set(range(len(digits) - 4, len(digits)))
    out, n = [], 0
    for c in text:
        if c.isdigit():
            out.append(c if n in keep else "*")
            n += 1
        else:
            out.append(c)
    return "".join(out)


_found = [0]  # card numbers masked in this process so far (``found``)


def found() -> int:
    """How many times this process has masked a card number so far: a flow compares the count
    before and after reading a file to learn whether its stored copy must be masked too (a task runs
    in a process of its own; a count raised by another thread only costs a needless look)."""
    return _found[0]


def mask_pans(text: str) -> str:
    """Every 13-19 digit card number that passes the Luhn check, masked to BIN + last four, whether
    written as one run or in groups joined by spaces or dashes (the separators kept); other numbers
    (a 23-digit ARN, an amount, a date, a phone number) are left alone."""
    out = _PAN.sub(lambda m: mask_pan(m.group()) if luhn_ok(m.group()) else m.group(), text)
    out = _SPACED.sub(_mask_spaced, out) if may_hold_pan(out) else out
    if out != text:
        _found[0] += 1
    return out


_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")  # 13 or more digits, maybe in groups


def _mask_run(m: re.Match[str]) -> str:
    text = m.group()
    total = sum(c.isdigit() for c in text)
    out, n = [], 0
    for c in text:
        if c.isdigit():
            out.append(c if n < 6 or n >= total - 4 else "*")
            n += 1
        else:
            out.append(c)
    return "".join(out)


def mask_digit_runs(text: str) -> str:
    """Every run of 13 or more digits, written in one piece or in groups joined by single spaces or
    dashes, masked to its first six and last four digits, Luhn or not: for a whole record echoed in
    an error, where a card number may run on into the next numeric field and no longer stand alone
    as a 13–19 digit number."""
    return _RUN.sub(_mask_run, text)


def mask_card_field(value: str) -> str:
    """A card field as an error may show it: padding dropped, every digit but the first six and
    the last four replaced by ``*`` (``4111111111**1111`` → ``411111******1111``)."""
    v = value.strip(" ").lstrip("0")
    at = [i for i, c in enumerate(v) if c.isdigit()]
    keep = set(at[:6] + at[-4:])
    return "".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(v))


def mask_card_slice(value: str) -> str:
    """A card field masked in place, for a stored copy of a file: every digit after the first six
    and before the last four of the number (the zero or blank fill on the left kept) replaced by
    ``*``, so the line keeps its length (``0004111111111111111`` → ``000411111******1111``)."""
    body = value.lstrip("0 ")
    lead = len(value) - len(body)
    at = [i for i, c in enumerate(body) if c.isdigit()]
    keep = set(at[:6] + at[-4:])
    masked = "".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(body))
    if masked != body:
        _found[0] += 1
    return value[:lead] + masked
