"""The `longformer` family: Longformer pretrained with masked LM on long
documents, chunked (not truncated) to the model's length."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from textmill.components.eval_windows import eval_documents
from textmill.components.model_validator.baselines import (
    token_counts,
    unigram_log_probs,
)
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.config import PipelineConfig
from textmill.families import preset_config
from textmill.families.base import Family, TrainingRun
from textmill.families.longformer.export import export_masked_lm
from textmill.features import INPUT_IDS_FEATURE
from textmill.serving.model_formats import preset_model_path
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits, token_nll
from textmill.tokenization.bpe_files import BpeFiles, export_hf_bpe
from textmill.trainer.data import (
    documents_as_ragged,
    transformed_batches,
)
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerMaskedLM,
    LongformerMaskedLMMaskGenerator,
    backbone_presets,
)
from textmill.transform.byte_bpe_text import (  # noqa: F401  (Transform's entry)
    MERGES_ASSET,
    VOCAB_ASSET,
    preprocessing_fn,
)

# RoBERTa's special tokens, in RoBERTa's id order (<pad> = 1).
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
PRESETS = {"tiny": "longformer_tiny", "base": "longformer_base_4096"}
# Share of a window's tokens masked, in percent (integer arithmetic, so
# the count is the same in every process).
MASK_PERCENT = 15
MASK_RATE = MASK_PERCENT / 100
# Seed of the eval windows' masks (with the window's index).
EVAL_MASK_SEED = 0


def _preset_config(preset: str) -> dict:
    return preset_config(preset, PRESETS, backbone_presets, "Longformer")


def model_length(config: dict, sequence_length: int) -> int:
    """The input length of a Longformer for a requested length: a whole
    number of attention windows, within the position table.

    Args:
        config: the backbone's config.
        sequence_length: the requested length (`train.sequence_length`).
    """
    window = config["attention_window"]
    return min(
        max(window, sequence_length // window * window),
        config["max_sequence_length"] - 2,
    )


def chunk_documents(
    documents: tf.data.Dataset, sequence_length: int, ids: dict
) -> tf.data.Dataset:
    """Cuts each document into `<s> chunk </s>` windows padded to
    `sequence_length`; the last chunk of a document keeps its tail.

    Args:
        documents: elements are RaggedTensors [batch, None] of token ids.
        sequence_length: model input length.
        ids: ids of `bos`, `eos`, `pad`.

    Returns:
        Unbatched `{"token_ids", "padding_mask"}` of [sequence_length].
    """
    body = sequence_length - 2

    def chunks(doc: tf.Tensor) -> tf.data.Dataset:
        # [tokens] -> [chunks, body], the last chunk padded with -1.
        framed = tf.signal.frame(doc, body, body, pad_end=True, pad_value=-1)
        return tf.data.Dataset.from_tensor_slices(framed)

    def window(chunk: tf.Tensor) -> dict:
        chunk = tf.boolean_mask(chunk, chunk >= 0)
        ids_ = tf.concat([[ids["bos"]], chunk, [ids["eos"]]], axis=0)
        length = tf.shape(ids_)[0]
        pad = sequence_length - length
        return {
            "token_ids": tf.pad(ids_, [[0, pad]], constant_values=ids["pad"]),
            "padding_mask": tf.pad(tf.ones([length], tf.int32), [[0, pad]]),
        }

    return (
        documents.unbatch()
        .filter(lambda doc: tf.size(doc) > 0)
        .flat_map(chunks)
        .map(window, num_parallel_calls=tf.data.AUTOTUNE)
    )


def _vocab(run: TrainingRun) -> BpeFiles:
    """The byte-level BPE files of the run's Transform output."""
    return BpeFiles(
        run.tft_output.vocabulary_file_by_name(VOCAB_ASSET),
        run.tft_output.vocabulary_file_by_name(MERGES_ASSET),
    )


def special_ids(vocab: BpeFiles) -> dict:
    """Ids of `bos`, `pad`, `eos`, `unk` and `mask` in a vocabulary."""
    return {
        name: vocab.token_id(token)
        for name, token in zip(
            ("bos", "pad", "eos", "unk", "mask"), SPECIAL_TOKENS, strict=True
        )
    }


def _masked_count(tokens):
    """Masked positions of a window with `tokens` (>= 1, a Python int or
    a tensor) selectable tokens: 15 %, rounded up, so at least one."""
    return (tokens * MASK_PERCENT + 99) // 100


def eval_mask_slots(sequence_length: int) -> int:
    """Prediction slots of a masked eval window (its most masked
    positions)."""
    return _masked_count(sequence_length - 2)


def _mask_eval_window(
    index: tf.Tensor, window: dict, mask_id: int, slots: int
) -> tuple[dict, tf.Tensor, tf.Tensor]:
    """Masks one eval window, the same way wherever it is scored.

    The `_masked_count` selectable tokens (not `<s>`, `</s>`, padding)
    with the smallest stateless random keys, seeded by `EVAL_MASK_SEED`
    and the window's index, become `<mask>` (no random or kept tokens, so
    the score does not depend on a draw).

    Returns:
        `({"token_ids", "padding_mask", "mask_positions"}, labels,
        weights)`; positions, labels and weights have `slots` entries, the
        unused ones 0 with weight 0.
    """
    token_ids, padding_mask = window["token_ids"], window["padding_mask"]
    length = tf.shape(token_ids)[0]
    real = tf.reduce_sum(padding_mask)
    position = tf.range(length)
    # Not <s> (position 0), </s> (the last real token) or padding.
    selectable = (position > 0) & (position < real - 1)
    count = _masked_count(real - 2)
    keys = tf.random.stateless_uniform(
        [length], seed=tf.stack([EVAL_MASK_SEED, tf.cast(index, tf.int32)])
    )
    keys = tf.where(selectable, keys, 2.0)
    positions = tf.sort(tf.argsort(keys)[:count])
    labels = tf.gather(token_ids, positions)
    masked = tf.tensor_scatter_nd_update(
        token_ids, positions[:, None], tf.fill([count], mask_id)
    )
    pad = [[0, slots - count]]
    return (
        {
            "token_ids": masked,
            "padding_mask": padding_mask,
            "mask_positions": tf.pad(positions, pad),
        },
        tf.pad(labels, pad),
        tf.pad(tf.ones([count], tf.float32), pad),
    )


def masked_eval_windows(
    documents: tf.data.Dataset, sequence_length: int, ids: dict
) -> tf.data.Dataset:
    """The eval units: `chunk_documents`' windows, each masked by
    `_mask_eval_window`. The Trainer's val_nll and ModelValidator both
    score these, so the curve's last point is the gate's loss.

    Args:
        documents: the eval split's token ids, RaggedTensors [batch, None],
            in the eval units' order.
        sequence_length: model input length.
        ids: ids of `bos`, `eos`, `pad`, `mask`.

    Returns:
        Unbatched `({"token_ids", "padding_mask", "mask_positions"},
        labels, weights)`.
    """
    return (
        chunk_documents(documents, sequence_length, ids)
        .enumerate()
        .map(
            functools.partial(
                _mask_eval_window,
                mask_id=ids["mask"],
                slots=eval_mask_slots(sequence_length),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    )


def _eval_windows(model_dir: str, examples, count: int):
    """The first `count` (0 = all) `masked_eval_windows` of the eval split:
    `(inputs, padding_mask, positions, labels)` numpy arrays."""
    metadata = read_model_metadata(model_dir)
    windows = masked_eval_windows(
        eval_documents(examples),
        metadata["sequence_length"],
        metadata["special_ids"],
    )
    masked = []
    for x, labels, weights in windows.take(count or -1).as_numpy_iterator():
        used = int(weights.sum())
        masked.append(
            (
                x["token_ids"],
                x["padding_mask"],
                x["mask_positions"][:used],
                labels[:used],
            )
        )
    if not masked:
        raise ValueError(f"The eval split of {examples.uri} is empty.")
    return masked


def _masked_metrics(correct: list, nll: list, counts: list) -> dict:
    """Accuracy and perplexity of per-window sums over masked tokens."""
    return {
        "accuracy": metric_value("accuracy", correct, counts),
        "perplexity": metric_value("perplexity", nll, counts),
        "masked_tokens": int(np.sum(counts)),
        SAMPLES_KEY: {
            **samples("accuracy", correct, counts),
            **samples("perplexity", nll, counts),
        },
    }


@dataclasses.dataclass(frozen=True)
class MaskedLMPlan:
    """What a Longformer run fixes before training.

    Args:
        vocab_size: tokens in Transform's vocabulary.
        ids: ids of `bos`, `pad`, `eos`, `unk`, `mask`.
        config: the backbone's config (vocabulary and pad id set).
        sequence_length: the window length, a whole number of attention
            windows within the position table.
        masker: draws the masked positions of each training batch.
    """

    vocab_size: int
    ids: dict
    config: dict
    sequence_length: int
    masker: LongformerMaskedLMMaskGenerator


class LongformerFamily(Family[MaskedLMPlan]):
    """Longformer masked LMs on documents cut into windows."""

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: a RoBERTa-style byte-level BPE."""
        preset = _preset_config(config.train.preset)
        return {
            **self.vocabulary_config(config, preset["vocabulary_size"]),
            "special_tokens": list(SPECIAL_TOKENS),
        }

    def plan(self, run: TrainingRun) -> MaskedLMPlan:
        vocab = _vocab(run)
        ids = special_ids(vocab)
        config = _preset_config(run.hparams.preset)
        config["vocabulary_size"] = vocab.vocab_size()
        config["pad_token_id"] = ids["pad"]
        sequence_length = model_length(config, run.hparams.sequence_length)
        masker = LongformerMaskedLMMaskGenerator(
            vocabulary_size=vocab.vocab_size(),
            mask_selection_length=max(
                1, int(sequence_length * MASK_RATE * 1.5)
            ),
            mask_token_id=ids["mask"],
            unselectable_token_ids=(ids["bos"], ids["pad"], ids["eos"]),
        )
        return MaskedLMPlan(
            vocab.vocab_size(), ids, config, sequence_length, masker
        )

    def dataset(
        self,
        run: TrainingRun,
        plan: MaskedLMPlan,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        """Masked windows of documents (see `chunk_documents`): for
        training shuffled and masked anew at each batch; for eval the
        `masked_eval_windows` ModelValidator scores, in its order."""
        documents = transformed_batches(
            files,
            run.fn_args.data_accessor,
            run.schema,
            repeat=repeat,
            seed=run.hparams.seed,
            batch_size=32,
        ).map(documents_as_ragged)
        if not repeat:
            return (
                masked_eval_windows(documents, plan.sequence_length, plan.ids)
                .batch(run.hparams.batch_size)
                .prefetch(tf.data.AUTOTUNE)
            )
        windows = chunk_documents(documents, plan.sequence_length, plan.ids)
        return (
            windows.shuffle(512, seed=run.hparams.seed)
            .batch(run.hparams.batch_size, drop_remainder=True)
            .map(plan.masker)
            .prefetch(tf.data.AUTOTUNE)
        )

    def build_model(
        self, run: TrainingRun, plan: MaskedLMPlan
    ) -> LongformerMaskedLM:
        if run.hparams.init_from:
            return LongformerMaskedLM(
                LongformerBackbone.from_preset(run.hparams.init_from)
            )
        return LongformerMaskedLM(LongformerBackbone(**plan.config))

    def export(
        self, run: TrainingRun, plan: MaskedLMPlan, model: keras.Model
    ) -> dict:
        export_masked_lm(
            model,
            run.tft_output,
            run.serving_model_dir,
            run.network_dir,
            plan.sequence_length,
            plan.ids,
        )
        # A preset to fine-tune from (`--init-from`): the masked LM and
        # its vocabulary as Hugging Face vocab.json + merges.txt.
        preset_dir = preset_model_path(run.model_uri)
        model.save_to_preset(preset_dir)
        export_hf_bpe(_vocab(run), preset_dir)
        return {
            "vocabulary_size": plan.vocab_size,
            "special_ids": plan.ids,
            "sequence_length": plan.sequence_length,
            "attention_window": plan.config["attention_window"],
        }

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """Masked-token accuracy and perplexity on masked eval windows."""
        logits_fn = SavedModelLogits(model_dir)
        correct, nll, counts = [], [], []
        for inputs, padding, positions, labels in _eval_windows(
            model_dir, examples, max_units
        ):
            logits = logits_fn(
                {
                    "token_ids": inputs[np.newaxis],
                    "padding_mask": padding[np.newaxis],
                }
            )[0]
            picked = logits[positions]
            nll.append(float(token_nll(picked, labels).sum()))
            correct.append(int((picked.argmax(-1) == labels).sum()))
            counts.append(len(labels))
        return _masked_metrics(correct, nll, counts)

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """The train split's most frequent token at every masked position
        (accuracy) and its smoothed unigram model (perplexity), on the masked
        windows `evaluate` scores."""
        metadata = read_model_metadata(model_dir)
        counts = token_counts(
            examples, metadata["vocabulary_size"], INPUT_IDS_FEATURE
        )
        log_probs = unigram_log_probs(counts)
        top = int(np.argmax(counts))
        correct, nll, sizes = [], [], []
        for _, _, _, labels in _eval_windows(model_dir, examples, max_units):
            correct.append(int((labels == top).sum()))
            nll.append(float(-log_probs[labels].sum()))
            sizes.append(len(labels))
        return {
            "name": "most frequent token / unigram",
            **_masked_metrics(correct, nll, sizes),
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Masked eval windows as inputs of the bare network."""
        return [
            {
                "token_ids": inputs[np.newaxis],
                "padding_mask": padding[np.newaxis],
            }
            for inputs, padding, _, _ in _eval_windows(
                model_dir, examples, count
            )
        ]
