"""Voucher codes: no look-alikes, typed any way, every single typo and adjacent swap caught."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotspotd.core import codes
from hotspotd.core.codes import ALPHABET, CodeKind, CodeProblem


def test_alphabet_has_no_look_alikes() -> None:
    for ch in "0O1IL":
        assert ch not in ALPHABET
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


@pytest.mark.parametrize("kind", list(CodeKind))
def test_made_codes_pass_their_own_check(kind: CodeKind) -> None:
    for _ in range(200):
        code = codes.make(kind)
        result = codes.check(code)
        assert result.ok, (code, result)
        assert result.code == code
        assert result.kind is kind


def test_alnum_codes_use_only_the_alphabet() -> None:
    made = {codes.make() for _ in range(500)}
    assert len(made) == 500  # random, not a counter
    assert all(set(c) <= set(ALPHABET) and len(c) == 9 for c in made)


def test_digit_codes_are_digits() -> None:
    code = codes.make(CodeKind.DIGITS)
    assert code.isdigit() and len(code) == 11


@pytest.mark.parametrize("kind", list(CodeKind))
def test_every_single_character_error_is_caught(kind: CodeKind) -> None:
    symbols = ALPHABET if kind is CodeKind.ALNUM else "0123456789"
    for _ in range(20):
        code = codes.make(kind)
        for pos in range(len(code)):
            for other in symbols:
                if other == code[pos]:
                    continue
                typo = code[:pos] + other + code[pos + 1 :]
                assert not codes.check(typo).ok, (code, typo)


@pytest.mark.parametrize("kind", list(CodeKind))
def test_every_adjacent_swap_is_caught(kind: CodeKind) -> None:
    for _ in range(300):
        code = codes.make(kind)
        for pos in range(len(code) - 1):
            if code[pos] == code[pos + 1]:
                continue
            swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
            result = codes.check(swapped)
            assert not result.ok and result.problem is CodeProblem.CHECK, (code, swapped)


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8), st.data())
def test_property_any_body_any_single_change(body: str, data: st.DataObject) -> None:
    code = body + codes._alnum_check(body)
    assert codes.check(code).ok
    pos = data.draw(st.integers(0, 8))
    other = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != code[pos]))
    assert not codes.check(code[:pos] + other + code[pos + 1 :]).ok


def test_codes_are_read_in_any_case_with_spaces_and_dashes() -> None:
    code = codes.make()
    shown = codes.display(code)
    assert shown.count("-") == 2
    for typed in (
        shown,
        shown.lower(),
        code.lower(),
        " ".join(code),
        f" {shown} ",
        shown.replace("-", " "),
    ):
        assert codes.check(typed).code == code


def test_digit_codes_display_in_groups() -> None:
    code = codes.make(CodeKind.DIGITS)
    shown = codes.display(code)
    assert shown.replace(" ", "") == code and shown.count(" ") == 2
    assert codes.check(shown.replace(" ", "-")).code == code


def test_look_alike_characters_are_named_in_the_message() -> None:
    code = codes.make()
    typo = "O" + code[1:]
    result = codes.check(typo)
    assert result.problem is CodeProblem.CHARACTER
    assert "'O'" in result.detail


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", CodeProblem.EMPTY),
        ("  - ", CodeProblem.EMPTY),
        ("ABC", CodeProblem.LENGTH),
        ("2345678923456", CodeProblem.LENGTH),
    ],
)
def test_wrong_length_and_empty(typed: str, problem: CodeProblem) -> None:
    assert codes.check(typed).problem is problem
