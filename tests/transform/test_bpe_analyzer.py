"""learn_byte_bpe: a BPE learned (or imported) by Transform, served in-graph."""

import os
import shutil

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from textmill.tokenization.bpe_files import (
    BpeFiles,
    export_hf_bpe,
    import_hf_bpe,
    train_byte_bpe,
)
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.transform.bpe_analyzer import (
    MERGES_FILENAME,
    VOCAB_FILENAME,
    learn_byte_bpe,
)

VOCAB_SIZE = 400
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "It's 42 degrees today; the dog doesn't mind.",
    "  Indented lines\n\tand tabs\n\n",
    "naïve café, 日本語のテキスト, emoji 👍🏽",
    "Numbers: 3.14, 2718, ١٢٣ and the end   ",
    "",
] * 8
SERVING_TEXTS = ["Unseen text at serving time!", "", "  it's 3 o'clock\n"]


def reference_tokenizer(vocab_json: str, merges_txt: str) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE.from_file(vocab_json, merges_txt))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


def reference_ids(tokenizer: Tokenizer, texts) -> list[list[int]]:
    return [encoding.ids for encoding in tokenizer.encode_batch(texts)]


def read_bytes(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def analyze_and_transform(preprocessing_fn, tmp_path, force_tf_compat_v1):
    """Runs Transform on TEXTS; returns (rows, TFTransformOutput).

    The transform output is moved and the analysis temp dir deleted first,
    so the transform graph must carry its own assets.
    """
    raw_metadata = tft.DatasetMetadata.from_feature_spec(
        {"text": tf.io.FixedLenFeature([], tf.string)}
    )
    work_dir = tmp_path / "tft_tmp"
    with tft_beam.Context(
        temp_dir=str(work_dir), force_tf_compat_v1=force_tf_compat_v1
    ):
        (rows, _), transform_fn = (
            [{"text": text} for text in TEXTS],
            raw_metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "written"))
    shutil.rmtree(work_dir)
    output_dir = shutil.move(tmp_path / "written", tmp_path / "transform")
    return rows, tft.TFTransformOutput(str(output_dir))


def asset_files(output: tft.TFTransformOutput) -> BpeFiles:
    assets = os.path.join(output.transform_savedmodel_dir, "assets")
    return BpeFiles(
        os.path.join(assets, VOCAB_FILENAME),
        os.path.join(assets, MERGES_FILENAME),
    )


def serve(output: tft.TFTransformOutput, texts) -> list[list[int]]:
    """Ids from the written transform graph, fed raw strings."""
    layer = output.transform_features_layer()
    features = layer({"text": tf.constant(texts)})
    return tf.RaggedTensor.from_sparse(features["input_ids"]).to_list()


def learned_preprocessing_fn(inputs):
    text = inputs["text"]
    vocab, merges = learn_byte_bpe(text, vocab_size=VOCAB_SIZE)
    ids = ByteBPETokenizer(vocab, merges).tokenize(text)
    lengths = ids.row_lengths()
    # An analyzer over the token ids runs only once the vocabulary exists.
    return {
        "input_ids": ids.to_sparse(),
        "longest": tf.fill(tf.shape(lengths), tft.max(lengths)),
    }


def check_learned_vocabulary(tmp_path, force_tf_compat_v1):
    rows, output = analyze_and_transform(
        learned_preprocessing_fn, tmp_path, force_tf_compat_v1
    )
    files = asset_files(output)
    # The word-count training gives what training on the texts gives.
    direct = train_byte_bpe(TEXTS, VOCAB_SIZE, str(tmp_path / "direct"))
    assert read_bytes(files.vocab_path) == read_bytes(direct.vocab_path)
    assert read_bytes(files.merges_path) == read_bytes(direct.merges_path)
    assert len(files.read_merges()) > 20

    reference = reference_tokenizer(*export_hf_bpe(files, str(tmp_path / "hf")))
    want = reference_ids(reference, TEXTS)
    assert [row["input_ids"].tolist() for row in rows] == want
    assert {row["longest"] for row in rows} == {max(map(len, want))}
    assert serve(output, SERVING_TEXTS) == reference_ids(
        reference, SERVING_TEXTS
    )


@pytest.mark.slow
def test_learned_vocabulary_serves_tokenizers_ids(tmp_path):
    check_learned_vocabulary(tmp_path, force_tf_compat_v1=False)


@pytest.mark.slow
def test_learned_vocabulary_in_tf1_compat_mode(tmp_path):
    check_learned_vocabulary(tmp_path, force_tf_compat_v1=True)


@pytest.mark.slow
def test_init_from_hf_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.train_from_iterator(
        ["other text for another vocabulary, with other words"] * 5,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    vocab_json, merges_txt = hf.model.save(str(checkpoint))

    def preprocessing_fn(inputs):
        text = inputs["text"]
        vocab, merges = learn_byte_bpe(
            text, vocab_size=VOCAB_SIZE, init_from=str(checkpoint)
        )
        ids = ByteBPETokenizer(vocab, merges).tokenize(text)
        return {"input_ids": ids.to_sparse()}

    rows, output = analyze_and_transform(
        preprocessing_fn, tmp_path, force_tf_compat_v1=False
    )
    imported = import_hf_bpe(vocab_json, merges_txt, str(tmp_path / "line"))
    files = asset_files(output)
    assert read_bytes(files.vocab_path) == read_bytes(imported.vocab_path)
    assert read_bytes(files.merges_path) == read_bytes(imported.merges_path)
    reference = reference_tokenizer(vocab_json, merges_txt)
    assert [row["input_ids"].tolist() for row in rows] == reference_ids(
        reference, TEXTS
    )
    assert serve(output, SERVING_TEXTS) == reference_ids(
        reference, SERVING_TEXTS
    )


def test_rejects_texts_that_are_not_1d():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="1-D"):
        learn_byte_bpe(tf.constant([["a"]]), VOCAB_SIZE)


def test_rejects_init_from_without_hf_files(tmp_path):
    with tf.Graph().as_default(), pytest.raises(ValueError, match="vocab.json"):
        learn_byte_bpe(tf.constant(["a"]), VOCAB_SIZE, init_from=str(tmp_path))
