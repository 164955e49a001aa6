"""The masking both MLM families share: select, then mask/replace/keep."""

import keras
from keras_hub.layers import MaskedLMMaskGenerator


class TokenMasker(keras.layers.Layer):
    """Base of the in-pipeline MLM mask generators.

    Holds keras-hub's `MaskedLMMaskGenerator` and the configuration; a
    subclass's `call()` arranges its outputs for its task.

    Args:
        vocabulary_size: random replacement ids are drawn below it.
        mask_selection_length: static number of prediction slots per
            sequence; fewer selections are padded with weight 0.
        mask_token_id: id of the mask token.
        unselectable_token_ids: ids never selected (special tokens).
        mask_selection_rate: share of tokens selected.
        mask_token_rate: share of selections replaced by the mask token.
        random_token_rate: share of selections replaced by a random token.
        **kwargs: other `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        vocabulary_size: int,
        mask_selection_length: int,
        mask_token_id: int,
        unselectable_token_ids: tuple[int, ...],
        mask_selection_rate: float = 0.15,
        mask_token_rate: float = 0.8,
        random_token_rate: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.mask_selection_length = mask_selection_length
        self.mask_token_id = mask_token_id
        self.unselectable_token_ids = tuple(unselectable_token_ids)
        self.mask_selection_rate = mask_selection_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.masker = MaskedLMMaskGenerator(
            vocabulary_size=vocabulary_size,
            mask_selection_rate=mask_selection_rate,
            mask_token_id=mask_token_id,
            mask_selection_length=mask_selection_length,
            unselectable_token_ids=list(self.unselectable_token_ids),
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
            name="masker",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "mask_selection_length": self.mask_selection_length,
                "mask_token_id": self.mask_token_id,
                "unselectable_token_ids": list(self.unselectable_token_ids),
                "mask_selection_rate": self.mask_selection_rate,
                "mask_token_rate": self.mask_token_rate,
                "random_token_rate": self.random_token_rate,
            }
        )
        return config
