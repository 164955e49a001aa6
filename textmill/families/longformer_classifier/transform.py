"""Transform's preprocessing_fn for classification: (text, label) ->
byte-level BPE ids and a label id.

The text is tokenized exactly as for the Longformer masked LM
(`transform.byte_bpe_text`, RoBERTa's special tokens), so a model
pretrained by the `longformer` family or converted from Hugging Face reads
the same ids. The labels are strings (TextExampleGen's `target` feature);
their vocabulary is learned on the analyzed (train) split, most frequent
first, and shipped with the model as the asset `LABEL_VOCAB_ASSET`. A
label the train split never had gets the id -1.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import LABEL_FEATURE, TARGET_FEATURE
from textmill.transform.byte_bpe_text import dense_text
from textmill.transform.byte_bpe_text import (
    preprocessing_fn as byte_bpe_preprocessing_fn,
)

# The label vocabulary's name in the transform output
# (`TFTransformOutput.vocabulary_file_by_name`): one label per line, the
# line number is the class id.
LABEL_VOCAB_ASSET = "label_vocab"
# The class id of a label the train split did not have.
UNKNOWN_LABEL_ID = -1


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Tokenizes `text` into `input_ids` and maps `target` (the label) to
    its class id, `label`.

    Args:
        inputs: raw features; must contain `text` and `target`.
        custom_config: as `byte_bpe_text.preprocessing_fn`'s.

    Returns:
        `{"input_ids": SparseTensor[int64, (batch, None)],
        "label": int64 [batch]}`.
    """
    outputs = byte_bpe_preprocessing_fn(inputs, custom_config)
    labels = tf.strings.strip(dense_text(inputs[TARGET_FEATURE]))
    outputs[LABEL_FEATURE] = tft.compute_and_apply_vocabulary(
        labels,
        default_value=UNKNOWN_LABEL_ID,
        vocab_filename=LABEL_VOCAB_ASSET,
    )
    return outputs
