import hashlib

import pytest

from textmill.components.text_example_gen import normalize


def test_nfc_composes_characters():
    assert normalize.normalize_text("cafe\u0301") == "caf\u00e9"


def test_whitespace_is_collapsed_and_paragraphs_kept():
    raw = "  One \t two\u00a0 three  \r\nfour\n \n\t\n\n  Five.  \rsix \n\n"
    assert normalize.normalize_text(raw) == "One two three\nfour\n\nFive.\nsix"


@pytest.mark.parametrize("raw", ["", " ", "\n\n\t \r\n", "\u00a0\u2028"])
def test_whitespace_only_normalizes_to_empty(raw):
    assert normalize.normalize_text(raw) == ""


def test_normalization_is_idempotent():
    once = normalize.normalize_text(" a  b\n\n\n c \n")
    assert normalize.normalize_text(once) == once


def test_doc_id_is_sha256_prefix():
    assert (
        normalize.doc_id("hello") == (hashlib.sha256(b"hello").hexdigest()[:16])
    )
    assert normalize.doc_id("hello") == "2cf24dba5fb0a30e"
    assert normalize.doc_id("hello!") != normalize.doc_id("hello")


def test_filter_reason_boundaries():
    assert normalize.filter_reason("", 1, 10)[0] == "empty_after_normalization"
    assert normalize.filter_reason("abc", 4, 10)[0] == "too_short"
    assert normalize.filter_reason("a" * 11, 1, 10)[0] == "too_long"
    assert normalize.filter_reason("abcd", 4, 10) is None
    assert normalize.filter_reason("a" * 10, 1, 10) is None


def test_filter_detail_quotes_length_and_text():
    reason, detail = normalize.filter_reason("tiny", 10, 20)
    assert reason == "too_short"
    assert "4 chars < min_chars=10" in detail and "'tiny'" in detail


def test_is_eval_is_deterministic_and_near_fraction():
    ids = [normalize.doc_id(str(i)) for i in range(4000)]
    in_eval = [normalize.is_eval(i, 0.1) for i in ids]
    assert in_eval == [normalize.is_eval(i, 0.1) for i in ids]
    assert 0.08 < sum(in_eval) / len(ids) < 0.12
    # A larger fraction only adds documents to eval.
    eval_ids = [i for i, e in zip(ids, in_eval, strict=True) if e]
    assert all(normalize.is_eval(i, 0.5) for i in eval_ids)
