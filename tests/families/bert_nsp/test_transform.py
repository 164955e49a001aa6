"""NSP preprocessing: learned WordPiece + BERT packing == Hugging Face's."""

import functools
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils
from transformers import BertTokenizerFast

from textmill.families.bert_nsp import transform
from textmill.transform import wordpiece_analyzer

WORDS = (
    "river stone lantern orchard harbor meadow signal copper violet ember "
    "window garden market thunder pepper ribbon canyon silver marble fable"
).split()
# Accents, case, punctuation, digits, hyphens, apostrophes, symbols.
EXTRAS = [
    "Café déjà vu!",
    "It's 3.14 (approx.), not $5.",
    "E-mail me: a@b.com; OK?",
    "NAÏVE Résumé -- “quoted” text…",
    # Compatibility, format and space-separator characters.
    "Wait… the ﬁnal\u00a0word\u200bhere, ＡＢＣ\u00adz.",
]
SEQUENCE_LENGTH = 24


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
    text = " ".join(words).capitalize() + rng.choice([".", "!", "?"])
    return text + (" " + rng.choice(EXTRAS) if rng.random() < 0.4 else "")


def raw_pairs(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = [
        {
            "sentence_a": sentence(rng),
            "sentence_b": sentence(rng),
            "is_next": rng.randint(0, 1),
        }
        for _ in range(count)
    ]
    rows.append({"sentence_a": "", "sentence_b": "Only B.", "is_next": 0})
    return rows


def hf_packing(vocab_path: str, rows: list[dict]) -> dict[str, np.ndarray]:
    tokenizer = BertTokenizerFast(vocab_path, do_lower_case=True)
    packed = tokenizer(
        [row["sentence_a"] for row in rows],
        [row["sentence_b"] for row in rows],
        truncation=True,
        max_length=SEQUENCE_LENGTH,
        padding="max_length",
    )
    return {
        "token_ids": np.array(packed["input_ids"]),
        "segment_ids": np.array(packed["token_type_ids"]),
        "padding_mask": np.array(packed["attention_mask"]),
    }


def analyze_and_transform(tmp_path, rows, **config):
    """Runs TFT over `rows`; returns the transformed rows and the output."""
    metadata = tft.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {
                "sentence_a": tf.io.FixedLenFeature([], tf.string),
                "sentence_b": tf.io.FixedLenFeature([], tf.string),
                "is_next": tf.io.FixedLenFeature([], tf.int64),
            }
        )
    )
    preprocessing_fn = functools.partial(
        transform.preprocessing_fn,
        custom_config={"sequence_length": SEQUENCE_LENGTH, **config},
    )
    output_dir = str(tmp_path / "transform_output")
    with tft_beam.Context(temp_dir=str(tmp_path / "tft_tmp")):
        (transformed, _), transform_fn = (
            rows,
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return transformed, tft.TFTransformOutput(output_dir)


def stack(transformed, name):
    return np.stack([np.asarray(row[name]) for row in transformed])


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    rows = raw_pairs(120)
    transformed, output = analyze_and_transform(
        tmp_path_factory.mktemp("learned"), rows, vocab_size=150
    )
    return rows, transformed, output


def test_learned_vocabulary_is_bert_shaped(learned):
    _, _, output = learned
    path = output.vocabulary_file_by_name(transform.VOCAB_ASSET)
    assert path.endswith(wordpiece_analyzer.VOCAB_FILENAME)
    tokens = wordpiece_analyzer.read_vocab(path)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 100 < len(tokens) <= 150
    assert any(token.startswith("##") and len(token) > 3 for token in tokens)
    assert "é" not in "".join(tokens)  # accents stripped
    assert all(token == token.lower() for token in tokens[5:])


def test_transformed_data_equals_hf_packing(learned):
    rows, transformed, output = learned
    expected = hf_packing(
        output.vocabulary_file_by_name(transform.VOCAB_ASSET), rows
    )
    for name, values in expected.items():
        np.testing.assert_array_equal(stack(transformed, name), values)
    np.testing.assert_array_equal(
        stack(transformed, "is_next"), [row["is_next"] for row in rows]
    )
    # Some pairs were cut, and some kept whole.
    assert stack(transformed, "padding_mask").sum(axis=1).max() == 24
    assert stack(transformed, "padding_mask").sum(axis=1).min() < 24


def test_saved_transform_graph_packs_raw_strings(learned):
    _, _, output = learned
    rows = raw_pairs(30, seed=1)  # unseen text: unknown words too
    rows.append(
        {"sentence_a": "Zyxwv qqq!", "sentence_b": "Ünïcode ÅÉ.", "is_next": 0}
    )
    features = output.transform_raw_features(
        {
            "sentence_a": tf.constant([row["sentence_a"] for row in rows]),
            "sentence_b": tf.constant([row["sentence_b"] for row in rows]),
            "is_next": tf.constant([row["is_next"] for row in rows], tf.int64),
        }
    )
    expected = hf_packing(
        output.vocabulary_file_by_name(transform.VOCAB_ASSET), rows
    )
    for name, values in expected.items():
        assert features[name].dtype == tf.int64
        np.testing.assert_array_equal(features[name].numpy(), values)


@pytest.mark.slow
def test_imported_vocabulary_is_used_as_is(tmp_path):
    # A checkpoint-style vocabulary: special tokens not at ids 0..4.
    tokens = (
        ["[PAD]"]
        + [f"[unused{i}]" for i in range(3)]
        + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "!", "?", ",", "'"]
        + WORDS
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
        + list("abcdefghijklmnopqrstuvwxyz")
    )
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "vocab.txt").write_text("".join(f"{t}\n" for t in tokens))
    rows = raw_pairs(20, seed=2)
    transformed, output = analyze_and_transform(
        tmp_path, rows, init_from=str(checkpoint)
    )
    path = output.vocabulary_file_by_name(transform.VOCAB_ASSET)
    assert wordpiece_analyzer.read_vocab(path) == tokens
    expected = hf_packing(str(checkpoint / "vocab.txt"), rows)
    for name, values in expected.items():
        np.testing.assert_array_equal(stack(transformed, name), values)
    assert wordpiece_analyzer.special_token_ids(path) == {
        "[PAD]": 0,
        "[UNK]": 4,
        "[CLS]": 5,
        "[SEP]": 6,
        "[MASK]": 7,
    }


@pytest.mark.parametrize("length_a", [0, 1, 5, 9, 10, 11, 30])
@pytest.mark.parametrize("length_b", [0, 1, 5, 9, 10, 11, 30])
def test_truncation_matches_hf_longest_first(tmp_path, length_a, length_b):
    words = [f"w{i}" for i in range(40)]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(
        "".join(
            f"{t}\n"
            for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
        )
    )
    a, b = " ".join(words[:length_a]), " ".join(words[:length_b])
    tokenizer = BertTokenizerFast(str(vocab), do_lower_case=True)
    for length in (19, 20):  # odd and even budgets
        # Batched: a single call takes an empty `b` for no pair at all.
        expected = {
            name: values[0]
            for name, values in tokenizer(
                [a], [b], truncation=True, max_length=length
            ).items()
        }
        packed = transform.pack_sentence_pairs(
            tf.constant([a]), tf.constant([b]), str(vocab), length
        )
        mask = packed["padding_mask"].numpy()[0].astype(bool)
        assert (
            packed["token_ids"].numpy()[0][mask].tolist()
            == (expected["input_ids"])
        )
        assert (
            packed["segment_ids"].numpy()[0][mask].tolist()
            == (expected["token_type_ids"])
        )


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="sequence_length=3"):
        transform.preprocessing_fn(
            {
                "sentence_a": tf.constant(["a"]),
                "sentence_b": tf.constant(["b"]),
            },
            {"sequence_length": 3},
        )
    with pytest.raises(ValueError, match="holds no WordPiece vocabulary"):
        wordpiece_analyzer.resolve_vocab_file(str(tmp_path))
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"lacks the special tokens \[CLS\]"):
        wordpiece_analyzer.special_token_ids(str(bad))


def test_training_is_deterministic():
    rng = random.Random(3)
    counts = wordpiece_analyzer.count_words(sentence(rng) for _ in range(300))
    first = wordpiece_analyzer.train_wordpiece(counts, 120, 2)
    assert all(
        wordpiece_analyzer.train_wordpiece(counts, 120, 2) == first
        for _ in range(5)
    )
