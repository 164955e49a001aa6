"""On-the-fly masking of packed sentence pairs for BERT pretraining."""

import keras
import tensorflow as tf

from textmill.trainer.models.bert.bert_pretrainer import (
    MLM_OUTPUT,
    NSP_OUTPUT,
)
from textmill.trainer.models.token_masker import TokenMasker


@keras.saving.register_keras_serializable(package="textmill")
class BertPretrainerMaskGenerator(TokenMasker):
    """Masks packed pairs into `BertPretrainer` training examples.

    Selects `mask_selection_rate` of the selectable tokens of each sequence
    (never `[CLS]`, `[SEP]` or `[PAD]`; the count is rounded up per
    sequence, so short sequences get a little more); of those,
    `mask_token_rate` become `[MASK]`, `random_token_rate` a random token
    and the rest stay as they are (BERT's 15% with 80/10/10). It is made of
    TensorFlow ops, so it runs inside `tf.data` (`dataset.batch(n).map(
    masker)`), and draws a new mask at every call: every epoch sees
    different masks.

    Args:
        vocabulary_size: int. Random replacement ids are drawn below it.
        mask_selection_length: int. Prediction slots per sequence, e.g.
            `ceil(0.15 * sequence_length)` plus a margin; sequences with
            fewer selections get padding slots of weight 0, extra
            selections are dropped.
        mask_token_id: int. Id of `[MASK]`.
        unselectable_token_ids: ids never selected: `[PAD]`, `[CLS]`,
            `[SEP]`.
        mask_selection_rate: float. Defaults to `0.15`.
        mask_token_rate: float. Defaults to `0.8`.
        random_token_rate: float. Defaults to `0.1`.
        **kwargs: other `keras.layers.Layer` arguments.

    Call arguments:
        features: dict with int `"token_ids"`, `"segment_ids"`,
            `"padding_mask"` `(batch, length)` and `"is_next"` `(batch,)`,
            as Transform writes them.

    Returns:
        `(x, y, sample_weight)`: `x` has the masked `"token_ids"`, the
        given `"segment_ids"` and `"padding_mask"`, and `"mask_positions"`
        `(batch, slots)`; `y` is `{"mlm": original ids at those positions,
        "nsp": is_next}`; `sample_weight` is `{"mlm": 1 for real slots and 0
        for padding slots, "nsp": 1}`.

    Example:
    ```python
    masker = BertPretrainerMaskGenerator(
        vocabulary_size=30522, mask_selection_length=20, mask_token_id=103,
        unselectable_token_ids=(0, 101, 102),
    )
    dataset = packed_pairs.batch(32).map(masker)  # for BertPretrainer.fit
    ```
    """

    def call(self, features):
        masked = self.masker(features["token_ids"])
        is_next = features["is_next"]
        x = {
            "token_ids": masked["token_ids"],
            "segment_ids": features["segment_ids"],
            "padding_mask": features["padding_mask"],
            "mask_positions": masked["mask_positions"],
        }
        y = {MLM_OUTPUT: masked["mask_ids"], NSP_OUTPUT: is_next}
        sample_weight = {
            MLM_OUTPUT: masked["mask_weights"],
            NSP_OUTPUT: tf.ones_like(is_next, tf.float32),
        }
        return x, y, sample_weight
