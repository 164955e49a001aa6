"""The `bert_nsp` family: BERT next sentence prediction on sentence pairs
made by SentencePairGen."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

import textmill
from textmill.components.eval_windows import split_files
from textmill.components.model_validator.baselines import majority_label
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.families import preset_config
from textmill.families.bert_nsp.export import MODEL_INPUTS, export_next_sentence
from textmill.families.bert_nsp.transform import (  # noqa: F401  (Transform)
    VOCAB_ASSET,
    preprocessing_fn,
)
from textmill.features import IS_NEXT_FEATURE
from textmill.pipelines.config import PipelineConfig
from textmill.serving.model_formats import network_model_path
from textmill.serving.model_metadata import write_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits
from textmill.trainer import training
from textmill.trainer.models.bert.bert_backbone import BertBackbone
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    BertNextSentencePredictor,
)
from textmill.trainer.models.bert.bert_presets import backbone_presets

PRESETS = {"tiny": "bert_tiny", "base": "bert_base"}
DEFAULT_VOCAB_SIZE = 8000


def _preset_config(preset: str) -> dict:
    return preset_config(preset, PRESETS, backbone_presets, "BERT")


def sequence_length(config: PipelineConfig) -> int:
    """The packed pair length: train.sequence_length within the preset's
    position table."""
    preset = _preset_config(config.train.preset)
    return min(config.train.sequence_length, preset["max_sequence_length"])


def transform_config(config: PipelineConfig) -> dict:
    """Transform's custom_config: WordPiece vocabulary and packed length."""
    return {
        "sequence_length": sequence_length(config),
        "vocab_size": config.tokenizer.vocab_size or DEFAULT_VOCAB_SIZE,
        "min_frequency": config.tokenizer.min_frequency,
        "init_from": config.tokenizer.init_from or config.train.init_from,
        "textmill_version": textmill.__version__,
    }


def _vocab_size(tft_output) -> int:
    path = tft_output.vocabulary_file_by_name(VOCAB_ASSET)
    with tf.io.gfile.GFile(path) as f:
        return sum(1 for _ in f)


def train(fn_args) -> None:
    """Trains and exports a BERT next-sentence-prediction model."""
    hparams = training.train_config(fn_args)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = training.set_up_devices(hparams)
    config = _preset_config(hparams.preset)
    config["vocabulary_size"] = _vocab_size(tft_output)

    def dataset(files, repeat: bool) -> tf.data.Dataset:
        return fn_args.data_accessor.tf_dataset_factory(
            list(files),
            tfxio.TensorFlowDatasetOptions(
                batch_size=hparams.batch_size,
                shuffle=repeat,
                shuffle_seed=hparams.seed,
                num_epochs=None if repeat else 1,
                drop_final_batch=True,
                label_key=IS_NEXT_FEATURE,
            ),
            tft_output.transformed_metadata.schema,
        ).map(
            lambda x, y: (
                {name: tf.cast(x[name], tf.int32) for name in MODEL_INPUTS},
                tf.reshape(y, [-1]),
            )
        )

    def build_model() -> BertNextSentencePredictor:
        if hparams.init_from:
            return BertNextSentencePredictor.from_preset(hparams.init_from)
        return BertNextSentencePredictor(BertBackbone(**config))

    model = training.compile_and_fit(
        build_model,
        dataset(fn_args.train_files, repeat=True),
        dataset(fn_args.eval_files, repeat=False),
        hparams,
        fn_args,
        strategy,
    )
    if model is None:
        return
    # The packed length Transform produced.
    length = tft_output.transformed_feature_spec()[MODEL_INPUTS[0]].shape[0]
    export_next_sentence(
        model,
        tft_output,
        fn_args.serving_model_dir,
        network_model_path(os.path.dirname(fn_args.serving_model_dir)),
        length,
    )
    write_model_metadata(
        fn_args.serving_model_dir,
        {
            "family": fn_args.custom_config["family"],
            "preset": hparams.preset,
            "vocabulary_size": config["vocabulary_size"],
            "sequence_length": length,
            "train_steps": hparams.train_steps,
        },
    )


def _eval_pairs(examples, count: int) -> list[tuple[dict, int]]:
    """Packed eval pairs and their labels, from Transform's output."""
    dataset = tf.data.TFRecordDataset(
        split_files(examples, "eval"), compression_type="GZIP"
    )
    pairs = []
    for record in dataset.take(count or -1).as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        inputs = {
            name: np.array([features[name].int64_list.value], np.int32)
            for name in MODEL_INPUTS
        }
        pairs.append((inputs, features[IS_NEXT_FEATURE].int64_list.value[0]))
    if not pairs:
        raise ValueError(f"The eval split of {examples.uri} has no pairs.")
    return pairs


def _accuracy(correct: list[int], labels: list[int]) -> dict:
    ones = np.ones(len(correct))
    return {
        "accuracy": metric_value("accuracy", correct, ones),
        "pairs": len(correct),
        "positive_fraction": float(np.mean(labels)),
        SAMPLES_KEY: samples("accuracy", correct, ones),
    }


def evaluate(model_dir: str, examples, max_batches: int) -> dict:
    """NSP accuracy on held-out pairs (half true continuations)."""
    logits_fn = SavedModelLogits(model_dir)
    pairs = _eval_pairs(examples, max_batches)
    return _accuracy(
        [
            int(logits_fn(inputs)[0].argmax() == label)
            for inputs, label in pairs
        ],
        [label for _, label in pairs],
    )


def baseline(model_dir: str, examples, max_batches: int) -> dict:
    """The train split's majority class, on the pairs `evaluate` scores."""
    majority = majority_label(examples, IS_NEXT_FEATURE)
    labels = [label for _, label in _eval_pairs(examples, max_batches)]
    return {
        "name": f"majority class {majority}",
        **_accuracy([int(label == majority) for label in labels], labels),
    }


def parity_inputs(model_dir: str, examples, count: int) -> list[dict]:
    """Eval pairs as inputs of the bare network."""
    return [inputs for inputs, _ in _eval_pairs(examples, count)]
