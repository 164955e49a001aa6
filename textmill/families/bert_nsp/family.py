"""The `bert_nsp` family: BERT next sentence prediction on sentence pairs
made by SentencePairGen."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from textmill.components.eval_windows import eval_records
from textmill.components.model_validator.baselines import majority_label
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.config import PipelineConfig
from textmill.families import preset_config
from textmill.families.base import Family, TrainingRun
from textmill.families.bert_nsp.export import MODEL_INPUTS, export_next_sentence
from textmill.families.bert_nsp.transform import (  # noqa: F401  (Transform)
    VOCAB_ASSET,
    preprocessing_fn,
)
from textmill.features import IS_NEXT_FEATURE
from textmill.serving.saved_model_scoring import SavedModelLogits
from textmill.trainer.data import transformed_batches
from textmill.trainer.models.bert.bert_backbone import BertBackbone
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    BertNextSentencePredictor,
)
from textmill.trainer.models.bert.bert_presets import backbone_presets

PRESETS = {"tiny": "bert_tiny", "base": "bert_base"}
DEFAULT_VOCAB_SIZE = 8000


def _preset_config(preset: str) -> dict:
    return preset_config(preset, PRESETS, backbone_presets, "BERT")


def _vocab_size(tft_output) -> int:
    path = tft_output.vocabulary_file_by_name(VOCAB_ASSET)
    with tf.io.gfile.GFile(path) as f:
        return sum(1 for _ in f)


def balanced_pairs(pairs: tf.data.Dataset, count: int) -> tf.data.Dataset:
    """The eval units: pairs of both classes in turn, in the given order.

    The first pairs of a split (in `ordered_records`' order) need not be
    balanced; these alternate the next `is_next=1` and the next
    `is_next=0` pair, which the Trainer (val_nll) and ModelValidator both
    score, and the majority class is right on half.

    Args:
        pairs: unbatched `(inputs, is_next)` elements.
        count: units wanted; 0 = twice as many as the smaller class has.

    Returns:
        Unbatched `(inputs, is_next)`: 1, 0, 1, 0, ...
    """

    def of_class(label: int) -> tf.data.Dataset:
        return pairs.filter(
            lambda inputs, is_next: tf.equal(tf.cast(is_next, tf.int64), label)
        )

    alternating = tf.data.Dataset.zip(of_class(1), of_class(0)).flat_map(
        lambda true, random: tf.data.Dataset.from_tensors(true).concatenate(
            tf.data.Dataset.from_tensors(random)
        )
    )
    return alternating.take(count) if count else alternating


def _eval_pairs(examples, count: int) -> list[tuple[dict, int]]:
    """The `balanced_pairs` of the eval split, from Transform's output."""
    spec = {
        name: tf.io.VarLenFeature(tf.int64)
        for name in (*MODEL_INPUTS, IS_NEXT_FEATURE)
    }

    def parsed(record: tf.Tensor) -> tuple[dict, tf.Tensor]:
        features = {
            name: tf.sparse.to_dense(value)
            for name, value in tf.io.parse_single_example(record, spec).items()
        }
        inputs = {
            name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS
        }
        return inputs, features[IS_NEXT_FEATURE][0]

    records = eval_records(examples).map(parsed)
    pairs = [
        (
            {name: value[np.newaxis] for name, value in inputs.items()},
            int(label),
        )
        for inputs, label in balanced_pairs(records, count).as_numpy_iterator()
    ]
    if not pairs:
        raise ValueError(
            f"The eval split of {examples.uri} has no pair of each class "
            "(is_next 1 and 0); give SentencePairGen documents enough for "
            "both."
        )
    return pairs


def _accuracy(correct: list[int], labels: list[int]) -> dict:
    ones = np.ones(len(correct))
    return {
        "accuracy": metric_value("accuracy", correct, ones),
        "pairs": len(correct),
        "positive_fraction": float(np.mean(labels)),
        SAMPLES_KEY: samples("accuracy", correct, ones),
    }


class NextSentenceFamily(Family[dict]):
    """BERT next sentence prediction on packed (sentence_a, sentence_b)
    pairs; its plan is the backbone's config."""

    def sequence_length(self, config: PipelineConfig) -> int:
        """The packed pair length: train.sequence_length within the
        preset's position table."""
        preset = _preset_config(config.train.preset)
        return min(config.train.sequence_length, preset["max_sequence_length"])

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: WordPiece vocabulary and packed
        length."""
        return {
            **self.vocabulary_config(config, DEFAULT_VOCAB_SIZE),
            "sequence_length": self.sequence_length(config),
        }

    def plan(self, run: TrainingRun) -> dict:
        config = _preset_config(run.hparams.preset)
        config["vocabulary_size"] = _vocab_size(run.tft_output)
        return config

    def dataset(
        self,
        run: TrainingRun,
        plan: dict,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        """(packed pair, is_next) batches: for training shuffled, the last
        partial batch dropped; for eval the `balanced_pairs` ModelValidator
        scores, in its order."""
        batches = transformed_batches(
            files,
            run.fn_args.data_accessor,
            run.schema,
            repeat=repeat,
            seed=run.hparams.seed,
            batch_size=run.hparams.batch_size,
            drop_final_batch=repeat,
            label_key=IS_NEXT_FEATURE,
        ).map(
            lambda x, y: (
                {name: tf.cast(x[name], tf.int32) for name in MODEL_INPUTS},
                tf.reshape(y, [-1]),
            )
        )
        if repeat:
            return batches
        return balanced_pairs(batches.unbatch(), 0).batch(
            run.hparams.batch_size
        )

    def build_model(
        self, run: TrainingRun, plan: dict
    ) -> BertNextSentencePredictor:
        if run.hparams.init_from:
            return BertNextSentencePredictor.from_preset(run.hparams.init_from)
        return BertNextSentencePredictor(BertBackbone(**plan))

    def export(self, run: TrainingRun, plan: dict, model: keras.Model) -> dict:
        # The packed length Transform produced.
        spec = run.tft_output.transformed_feature_spec()
        length = spec[MODEL_INPUTS[0]].shape[0]
        export_next_sentence(
            model,
            run.tft_output,
            run.serving_model_dir,
            run.network_dir,
            length,
        )
        return {
            "vocabulary_size": plan["vocabulary_size"],
            "sequence_length": length,
        }

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """NSP accuracy on the `balanced_pairs` of the eval split."""
        logits_fn = SavedModelLogits(model_dir)
        pairs = _eval_pairs(examples, max_units)
        return _accuracy(
            [
                int(logits_fn(inputs)[0].argmax() == label)
                for inputs, label in pairs
            ],
            [label for _, label in pairs],
        )

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """The train split's majority class, on the pairs `evaluate` scores."""
        majority = majority_label(examples, IS_NEXT_FEATURE)
        labels = [label for _, label in _eval_pairs(examples, max_units)]
        return {
            "name": f"majority class {majority}",
            **_accuracy([int(label == majority) for label in labels], labels),
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Eval pairs as inputs of the bare network."""
        return [inputs for inputs, _ in _eval_pairs(examples, count)]
