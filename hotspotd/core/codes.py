"""Voucher codes: made with `secrets`, checked without the database.

Two kinds of code, told apart by their length:

- **letters and digits** — 8 random characters and a check character, shown as `ABC-DEF-GHJ`.
  The alphabet has no look-alikes (no 0/O, no 1/I/L): the digits 2–9 and the 23 other letters,
  31 symbols in all. 31 is prime, so a check character `sum(i * value) mod 31` over positions
  1..n catches every single wrong character (each weight is invertible mod 31) and every swap of
  two neighbours (the sum changes by the difference of the two values, never 0 mod 31).
- **digits only** — 10 random digits and a Damm check digit, shown as `1234 5678 901`. Damm's
  quasigroup catches every single-digit error and every adjacent transposition, like Verhoeff,
  with one table and no special cases.

Codes are read case-insensitively with spaces and dashes ignored.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
assert len(ALPHABET) == 31
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}

ALNUM_BODY = 8
DIGITS_BODY = 10

# Damm's totally anti-symmetric quasigroup of order 10 (Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


class CodeKind(enum.StrEnum):
    ALNUM = "alnum"
    DIGITS = "digits"


class CodeProblem(enum.StrEnum):
    EMPTY = "empty"
    LENGTH = "length"
    CHARACTER = "character"
    CHECK = "check"


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of reading a typed code: the canonical code, or what is wrong with it."""

    code: str | None
    kind: CodeKind | None
    problem: CodeProblem | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def normalize(text: str) -> str:
    """Upper case, without spaces, dashes, dots or underscores."""
    return "".join(ch for ch in text.upper() if ch not in " \t-._")


def _alnum_check(body: str) -> str:
    total = sum((i + 1) * _VALUE[ch] for i, ch in enumerate(body))
    # Weight of the check character itself is len(body) + 1; solve for a total of 0 mod 31.
    weight = len(body) + 1
    return ALPHABET[(-total * pow(weight, -1, 31)) % 31]


def _damm(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def make(kind: CodeKind = CodeKind.ALNUM) -> str:
    """A new random code with its check character, canonical (no separators)."""
    if kind is CodeKind.DIGITS:
        body = "".join(secrets.choice("0123456789") for _ in range(DIGITS_BODY))
        return body + str(_damm(body))
    body = "".join(secrets.choice(ALPHABET) for _ in range(ALNUM_BODY))
    return body + _alnum_check(body)


def check(text: str) -> CodeCheck:
    """Read a typed code. A typo is reported here, before any database is asked."""
    code = normalize(text)
    if not code:
        return CodeCheck(None, None, CodeProblem.EMPTY, "no code given")
    if len(code) == DIGITS_BODY + 1 and code.isdigit():
        if _damm(code) != 0:
            return CodeCheck(None, CodeKind.DIGITS, CodeProblem.CHECK, "check digit does not match")
        return CodeCheck(code, CodeKind.DIGITS)
    if len(code) == ALNUM_BODY + 1:
        bad = sorted({ch for ch in code if ch not in _VALUE})
        if bad:
            return CodeCheck(
                None,
                CodeKind.ALNUM,
                CodeProblem.CHARACTER,
                "codes never contain " + ", ".join(repr(ch) for ch in bad),
            )
        total = sum((i + 1) * _VALUE[ch] for i, ch in enumerate(code))
        if total % 31:
            return CodeCheck(None, CodeKind.ALNUM, CodeProblem.CHECK, "check letter does not match")
        return CodeCheck(code, CodeKind.ALNUM)
    return CodeCheck(
        None,
        None,
        CodeProblem.LENGTH,
        f"a code has {ALNUM_BODY + 1} letters and digits or {DIGITS_BODY + 1} digits, "
        f"not {len(code)}",
    )


def display(code: str) -> str:
    """How a code is printed on a card: in groups that are easy to read aloud and type."""
    if len(code) == DIGITS_BODY + 1:
        return f"{code[0:4]} {code[4:8]} {code[8:]}"
    return "-".join(code[i : i + 3] for i in range(0, len(code), 3))
