"""Summarization preprocessing: prompt + summary ids, loss on the summary."""

import functools
import os

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from textmill import features
from textmill.families.summarization import transform
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.transform.bpe_analyzer import MERGES_FILENAME, VOCAB_FILENAME

SEQUENCE_LENGTH = 48
EXAMPLES = [
    (
        "The committee met on Tuesday to discuss the budget. It decided "
        "to fund the new library and to repair the old bridge.",
        "The committee funded a library and a bridge repair.",
    ),
    (
        "  Rain is expected all week; the river may flood on Friday.\n\n",
        "\tRain all week, possible flood Friday. ",
    ),
    ("Le café coûte 3,50 € aujourd'hui, dit-il.", "Coffee costs €3.50."),
    # Longer than SEQUENCE_LENGTH: its document is cut.
    (
        " ".join(
            f"Item {number} of the long report says nothing new."
            for number in range(12)
        ),
        "A long report with nothing new.",
    ),
] * 2


def run_transform(tmp_path):
    """Runs Transform on EXAMPLES; returns the rows and the asset files."""
    raw_metadata = tft.DatasetMetadata.from_feature_spec(
        {
            features.TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string),
            features.TARGET_FEATURE: tf.io.FixedLenFeature([], tf.string),
        }
    )
    custom_config = {
        "vocab_size": 400,
        "min_frequency": 2,
        "sequence_length": SEQUENCE_LENGTH,
    }
    with tft_beam.Context(temp_dir=str(tmp_path / "tft_tmp")):
        (rows, _), transform_fn = (
            [
                {
                    features.TEXT_FEATURE: document,
                    features.TARGET_FEATURE: summary,
                }
                for document, summary in EXAMPLES
            ],
            raw_metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(
                transform.preprocessing_fn, custom_config=custom_config
            )
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "tft"))
    assets = os.path.join(
        tft.TFTransformOutput(str(tmp_path / "tft")).transform_savedmodel_dir,
        "assets",
    )
    return rows, (
        os.path.join(assets, VOCAB_FILENAME),
        os.path.join(assets, MERGES_FILENAME),
    )


@pytest.mark.slow
def test_input_ids_and_loss_mask(tmp_path):
    rows, (vocab_path, merges_path) = run_transform(tmp_path)
    tokenizer = ByteBPETokenizer(vocab_path, merges_path)

    def ids(text):
        return tokenizer.tokenize(tf.constant([text])).to_list()[0]

    end_id = int(tokenizer.token_to_id(transform.END_OF_TEXT))
    separator = ids(transform.PROMPT_SEPARATOR)
    truncated = 0
    for row, (document, summary) in zip(rows, EXAMPLES, strict=True):
        input_ids = row["input_ids"].tolist()
        loss_mask = row["loss_mask"].tolist()
        document_ids = ids(document.strip())
        summary_ids = ids(" " + summary.strip()) + [end_id]
        budget = SEQUENCE_LENGTH - len(separator) - len(summary_ids)
        truncated += len(document_ids) > budget
        prompt_ids = document_ids[:budget] + separator
        assert input_ids == prompt_ids + summary_ids
        assert loss_mask == [0] * len(prompt_ids) + [1] * len(summary_ids)
        assert len(input_ids) <= SEQUENCE_LENGTH
        assert row["document"].decode() == document.strip()
        assert row["reference"].decode() == summary.strip()
        if len(document_ids) <= budget:
            # The pieces tokenize as the whole text: the training prefix is
            # the serving prompt's tokenization.
            prompt = transform.summarization_prompt(tf.constant([document]))
            assert ids(prompt.numpy()[0].decode()) == prompt_ids
            assert ids(prompt.numpy()[0].decode() + " " + summary.strip()) == (
                prompt_ids + summary_ids[:-1]
            )
    # Both branches ran: examples cut and examples kept whole.
    assert 0 < truncated < len(EXAMPLES)
