"""The `longformer_classifier` family: a Longformer fine-tuned (or trained
from scratch) to label documents.

Records are (text, label) pairs, the label a string (`--label-field`).
Each document is one example: `<s>`, its first tokens up to the model's
length, `</s>`; `<s>` has global attention and its final state is
classified. Validation scores accuracy (the gate metric) and macro-F1 on
the eval examples against the train split's majority class.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from textmill.components.eval_windows import eval_records, parsed_batches
from textmill.components.model_validator.baselines import majority_label
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.config import PipelineConfig
from textmill.families import preset_config
from textmill.families.base import Family, TrainingRun
from textmill.families.longformer.family import (
    PRESETS,
    SPECIAL_TOKENS,
    model_length,
    special_ids,
)
from textmill.families.longformer_classifier.export import (
    ClassifierServing,
    document_inputs,
)
from textmill.families.longformer_classifier.transform import (  # noqa: F401  (Transform's entry)
    LABEL_VOCAB_ASSET,
    preprocessing_fn,
)
from textmill.features import INPUT_IDS_FEATURE, LABEL_FEATURE
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer.data import documents_as_ragged, transformed_batches
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerClassifier,
    backbone_presets,
)
from textmill.transform.byte_bpe_text import MERGES_ASSET, VOCAB_ASSET

# keras-hub's file of a preset's backbone config.
_PRESET_CONFIG_FILE = "config.json"


def _preset_config(preset: str) -> dict:
    return preset_config(preset, PRESETS, backbone_presets, "Longformer")


def _init_config(init_from: str) -> dict:
    """The backbone config of the keras-hub preset at `init_from`."""
    path = os.path.join(init_from, _PRESET_CONFIG_FILE)
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)["config"]


def read_labels(path: str) -> tuple[str, ...]:
    """The class names of a label vocabulary file, by class id."""
    with tf.io.gfile.GFile(path) as f:
        return tuple(line.rstrip("\n") for line in f)


def macro_f1(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """The unweighted mean of the per-class F1 over every class that is a
    label or a prediction (an unseen eval label, -1, is one class that no
    model predicts)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    scores = []
    for cls in np.union1d(labels, predictions):
        true_positive = np.sum((labels == cls) & (predictions == cls))
        wrong = np.sum(labels == cls) + np.sum(predictions == cls)
        scores.append(2 * true_positive / wrong)
    return float(np.mean(scores))


def _classification_metrics(labels: list[int], predictions: list[int]) -> dict:
    correct = [int(a == b) for a, b in zip(labels, predictions, strict=True)]
    ones = np.ones(len(correct))
    return {
        "accuracy": metric_value("accuracy", correct, ones),
        "macro_f1": macro_f1(labels, predictions),
        "examples": len(correct),
        "unseen_labels": int(np.sum(np.asarray(labels) < 0)),
        SAMPLES_KEY: samples("accuracy", correct, ones),
    }


def _eval_examples(model_dir: str, examples, count: int):
    """The first `count` (0 = all) eval examples as the bare network's
    inputs [1, L] and their class ids."""
    metadata = read_model_metadata(model_dir)
    spec = {
        INPUT_IDS_FEATURE: tf.io.RaggedFeature(tf.int64),
        LABEL_FEATURE: tf.io.FixedLenFeature([], tf.int64),
    }
    rows = (
        parsed_batches(eval_records(examples), spec)
        .unbatch()
        .take(count or -1)
        .ragged_batch(64)
        .map(
            lambda features: (
                document_inputs(
                    documents_as_ragged(features),
                    metadata["sequence_length"],
                    metadata["special_ids"],
                ),
                features[LABEL_FEATURE],
            )
        )
        .unbatch()
    )
    units = [
        ({name: value[np.newaxis] for name, value in inputs.items()}, int(y))
        for inputs, y in rows.as_numpy_iterator()
    ]
    if not units:
        raise ValueError(f"The eval split of {examples.uri} is empty.")
    return units


@dataclasses.dataclass(frozen=True)
class ClassifierPlan:
    """What a classifier run fixes before training.

    Args:
        vocab_size: tokens in Transform's vocabulary.
        ids: ids of `bos`, `pad`, `eos`, `unk`, `mask`.
        config: the backbone's config (vocabulary and pad id set).
        sequence_length: the model's input length.
        labels: the class names, by class id (most frequent first).
    """

    vocab_size: int
    ids: dict
    config: dict
    sequence_length: int
    labels: tuple[str, ...]


class LongformerClassifierFamily(Family[ClassifierPlan]):
    """Longformer document classifiers on (text, label) records."""

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: the masked LM's RoBERTa-style
        byte-level BPE (imported from `--init-from` when set)."""
        preset = _preset_config(config.train.preset)
        return {
            **self.vocabulary_config(config, preset["vocabulary_size"]),
            "special_tokens": list(SPECIAL_TOKENS),
        }

    def plan(self, run: TrainingRun) -> ClassifierPlan:
        """Raises ValueError when the train split has fewer than two
        labels."""
        vocab = BpeFiles(
            run.tft_output.vocabulary_file_by_name(VOCAB_ASSET),
            run.tft_output.vocabulary_file_by_name(MERGES_ASSET),
        )
        labels = read_labels(
            run.tft_output.vocabulary_file_by_name(LABEL_VOCAB_ASSET)
        )
        if len(labels) < 2:
            raise ValueError(
                f"The train split has {len(labels)} label(s) {list(labels)}; "
                "a classifier needs at least two: check --label-field and "
                "the data."
            )
        ids = special_ids(vocab)
        if run.hparams.init_from:
            config = _init_config(run.hparams.init_from)
        else:
            config = _preset_config(run.hparams.preset)
            config["vocabulary_size"] = vocab.vocab_size()
            config["pad_token_id"] = ids["pad"]
        return ClassifierPlan(
            vocab.vocab_size(),
            ids,
            config,
            model_length(config, run.hparams.sequence_length),
            labels,
        )

    def dataset(
        self,
        run: TrainingRun,
        plan: ClassifierPlan,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        """(document, class id) batches: shuffled for training; for eval
        in split order, without the labels training never saw."""
        batches = transformed_batches(
            files,
            run.fn_args.data_accessor,
            run.schema,
            repeat=repeat,
            seed=run.hparams.seed,
            batch_size=run.hparams.batch_size,
            drop_final_batch=repeat,
            label_key=LABEL_FEATURE,
        ).map(
            lambda x, y: (
                document_inputs(
                    documents_as_ragged(x), plan.sequence_length, plan.ids
                ),
                tf.reshape(y, [-1]),
            )
        )
        if repeat:
            return batches.prefetch(tf.data.AUTOTUNE)
        return (
            batches.unbatch()
            .filter(lambda x, y: y >= 0)
            .batch(run.hparams.batch_size)
        )

    def build_model(
        self, run: TrainingRun, plan: ClassifierPlan
    ) -> LongformerClassifier:
        if run.hparams.init_from:
            backbone = LongformerBackbone.from_preset(run.hparams.init_from)
        else:
            backbone = LongformerBackbone(**plan.config)
        return LongformerClassifier(backbone, num_classes=len(plan.labels))

    def export(
        self, run: TrainingRun, plan: ClassifierPlan, model: keras.Model
    ) -> dict:
        ClassifierServing(
            model, run.tft_output, plan.sequence_length, plan.ids, plan.labels
        ).export(run.serving_model_dir, run.network_dir)
        return {
            "vocabulary_size": plan.vocab_size,
            "special_ids": plan.ids,
            "sequence_length": plan.sequence_length,
            "attention_window": plan.config["attention_window"],
            "labels": list(plan.labels),
        }

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """Accuracy and macro-F1 on the eval examples."""
        logits_fn = SavedModelLogits(model_dir)
        units = _eval_examples(model_dir, examples, max_units)
        return _classification_metrics(
            [label for _, label in units],
            [int(logits_fn(inputs)[0].argmax()) for inputs, _ in units],
        )

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """The train split's majority class, on the examples `evaluate`
        scores."""
        majority = majority_label(examples, LABEL_FEATURE)
        name = read_model_metadata(model_dir)["labels"][majority]
        labels = [y for _, y in _eval_examples(model_dir, examples, max_units)]
        return {
            "name": f"majority class {name!r}",
            **_classification_metrics(labels, [majority] * len(labels)),
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Eval documents as inputs of the bare network."""
        return [
            inputs for inputs, _ in _eval_examples(model_dir, examples, count)
        ]
