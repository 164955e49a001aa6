"""On-the-fly masking of token batches for Longformer MLM pretraining."""

import keras

from textmill.trainer.models.token_masker import TokenMasker


@keras.saving.register_keras_serializable(package="textmill")
class LongformerMaskedLMMaskGenerator(TokenMasker):
    """Masks tokenized batches into `LongformerMaskedLM` training examples.

    Selects `mask_selection_rate` of the selectable tokens (never `<s>`,
    `</s>` or `<pad>`) in each sequence; of those, `mask_token_rate` become
    `<mask>`, `random_token_rate` a random token and the rest stay unchanged
    (BERT/RoBERTa's 15% with 80/10/10). Runs in the input pipeline, e.g.
    `dataset.batch(n).map(masker)`; a new mask is drawn at every call, so
    every epoch sees different masks.

    Args:
        vocabulary_size: int. Vocabulary size (random replacement ids are
            drawn below it).
        mask_selection_length: int. Static number of prediction slots per
            sequence; sequences with fewer selections are padded with weight
            0, extra selections are dropped.
        mask_token_id: int. Id of `<mask>`. Defaults to `50264` (RoBERTa).
        unselectable_token_ids: ids never selected. Defaults to `(0, 1, 2)`
            (`<s>`, `<pad>`, `</s>`).
        mask_selection_rate: float. Defaults to `0.15`.
        mask_token_rate: float. Defaults to `0.8`.
        random_token_rate: float. Defaults to `0.1`.
        **kwargs: other `keras.layers.Layer` arguments.

    Call arguments:
        features: dict with int `"token_ids"` and `"padding_mask"`, both
            `(batch, length)`.

    Returns:
        `(x, y, sample_weight)`: `x` has the masked `"token_ids"`, the given
        `"padding_mask"` and `"mask_positions"` `(batch, slots)`; `y` the
        original ids at those positions; `sample_weight` 1 for real slots and
        0 for padding slots.

    Example:
    ```python
    masker = LongformerMaskedLMMaskGenerator(
        vocabulary_size=50265, mask_selection_length=96
    )
    dataset = dataset.batch(8).map(masker)  # ready for LongformerMaskedLM
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        mask_selection_length: int,
        mask_token_id: int = 50264,
        unselectable_token_ids: tuple[int, ...] = (0, 1, 2),
        mask_selection_rate: float = 0.15,
        mask_token_rate: float = 0.8,
        random_token_rate: float = 0.1,
        **kwargs,
    ):
        super().__init__(
            vocabulary_size=vocabulary_size,
            mask_selection_length=mask_selection_length,
            mask_token_id=mask_token_id,
            unselectable_token_ids=unselectable_token_ids,
            mask_selection_rate=mask_selection_rate,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            **kwargs,
        )

    def call(self, features):
        masked = self.masker(features["token_ids"])
        x = {
            "token_ids": masked["token_ids"],
            "padding_mask": features["padding_mask"],
            "mask_positions": masked["mask_positions"],
        }
        return x, masked["mask_ids"], masked["mask_weights"]
