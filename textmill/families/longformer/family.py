"""The `longformer` family: Longformer pretrained with masked LM on long
documents, chunked (not truncated) to the model's length."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

import textmill
from textmill.components.eval_windows import split_files
from textmill.components.model_validator.baselines import (
    token_counts,
    unigram_log_probs,
)
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.families import preset_config
from textmill.families.longformer.export import export_masked_lm
from textmill.features import INPUT_IDS_FEATURE
from textmill.pipelines.config import PipelineConfig
from textmill.serving.model_formats import network_model_path
from textmill.serving.model_metadata import (
    read_model_metadata,
    write_model_metadata,
)
from textmill.serving.saved_model_scoring import SavedModelLogits
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer import training
from textmill.trainer.data import documents_as_ragged
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
MASK_RATE = 0.15


def _preset_config(preset: str) -> dict:
    return preset_config(preset, PRESETS, backbone_presets, "Longformer")


def transform_config(config: PipelineConfig) -> dict:
    """Transform's custom_config: a RoBERTa-style byte-level BPE."""
    preset = _preset_config(config.train.preset)
    return {
        "vocab_size": config.tokenizer.vocab_size or preset["vocabulary_size"],
        "min_frequency": config.tokenizer.min_frequency,
        "init_from": config.tokenizer.init_from or config.train.init_from,
        "special_tokens": list(SPECIAL_TOKENS),
        "textmill_version": textmill.__version__,
    }


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


def _special_ids(vocab: BpeFiles) -> dict:
    return {
        name: vocab.token_id(token)
        for name, token in zip(
            ("bos", "pad", "eos", "unk", "mask"), SPECIAL_TOKENS, strict=True
        )
    }


def train(fn_args) -> None:
    """Pretrains and exports a Longformer masked LM."""
    hparams = training.train_config(fn_args)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    vocab = BpeFiles(
        tft_output.vocabulary_file_by_name(VOCAB_ASSET),
        tft_output.vocabulary_file_by_name(MERGES_ASSET),
    )
    ids = _special_ids(vocab)
    strategy = training.set_up_devices(hparams)
    config = _preset_config(hparams.preset)
    config["vocabulary_size"] = vocab.vocab_size()
    config["pad_token_id"] = ids["pad"]
    window = config["attention_window"]
    # A whole number of attention windows, within the position table.
    sequence_length = min(
        max(window, hparams.sequence_length // window * window),
        config["max_sequence_length"] - 2,
    )
    masker = LongformerMaskedLMMaskGenerator(
        vocabulary_size=vocab.vocab_size(),
        mask_selection_length=max(1, int(sequence_length * MASK_RATE * 1.5)),
        mask_token_id=ids["mask"],
        unselectable_token_ids=(ids["bos"], ids["pad"], ids["eos"]),
    )

    def dataset(files, repeat: bool) -> tf.data.Dataset:
        documents = fn_args.data_accessor.tf_dataset_factory(
            list(files),
            tfxio.TensorFlowDatasetOptions(
                batch_size=32,
                shuffle=repeat,
                shuffle_seed=hparams.seed,
                num_epochs=None if repeat else 1,
            ),
            tft_output.transformed_metadata.schema,
        ).map(documents_as_ragged)
        windows = chunk_documents(documents, sequence_length, ids)
        if repeat:
            windows = windows.shuffle(512, seed=hparams.seed)
        return (
            windows.batch(hparams.batch_size, drop_remainder=True)
            .map(masker)
            .prefetch(tf.data.AUTOTUNE)
        )

    def build_model() -> LongformerMaskedLM:
        if hparams.init_from:
            return LongformerMaskedLM(
                LongformerBackbone.from_preset(hparams.init_from)
            )
        return LongformerMaskedLM(LongformerBackbone(**config))

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
    export_masked_lm(
        model,
        tft_output,
        fn_args.serving_model_dir,
        network_model_path(os.path.dirname(fn_args.serving_model_dir)),
        sequence_length,
        ids,
    )
    write_model_metadata(
        fn_args.serving_model_dir,
        {
            "family": fn_args.custom_config["family"],
            "preset": hparams.preset,
            "vocabulary_size": vocab.vocab_size(),
            "special_ids": ids,
            "sequence_length": sequence_length,
            "attention_window": window,
            "train_steps": hparams.train_steps,
        },
    )


def _eval_windows(model_dir: str, examples, count: int):
    """Eval windows as the Trainer makes them, masked with a fixed seed."""
    metadata = read_model_metadata(model_dir)
    ids = metadata["special_ids"]
    spec = {INPUT_IDS_FEATURE: tf.io.VarLenFeature(tf.int64)}
    documents = (
        tf.data.TFRecordDataset(
            split_files(examples, "eval"), compression_type="GZIP"
        )
        .batch(32)
        .map(lambda x: tf.io.parse_example(x, spec))
        .map(documents_as_ragged)
    )
    windows = chunk_documents(documents, metadata["sequence_length"], ids)
    windows = [w for w in windows.take(count or -1).as_numpy_iterator()]
    if not windows:
        raise ValueError(f"The eval split of {examples.uri} is empty.")
    rng = np.random.default_rng(0)
    masked = []
    for w in windows:
        real = np.flatnonzero(w["padding_mask"])[1:-1]  # not <s>, </s>
        picked = real[rng.random(len(real)) < MASK_RATE]
        if not len(picked) and len(real):
            picked = real[:1]
        inputs = w["token_ids"].copy()
        inputs[picked] = ids["mask"]
        masked.append(
            (inputs, w["padding_mask"], picked, w["token_ids"][picked])
        )
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


def evaluate(model_dir: str, examples, max_batches: int) -> dict:
    """Masked-token accuracy and perplexity on masked eval windows."""
    logits_fn = SavedModelLogits(model_dir)
    correct, nll, counts = [], [], []
    for inputs, padding, positions, labels in _eval_windows(
        model_dir, examples, max_batches
    ):
        logits = logits_fn(
            {
                "token_ids": inputs[np.newaxis],
                "padding_mask": padding[np.newaxis],
            }
        )[0]
        picked = logits[positions].astype(np.float64)
        peak = picked.max(-1, keepdims=True)
        log_z = peak[:, 0] + np.log(np.exp(picked - peak).sum(-1))
        nll.append(
            float((log_z - picked[np.arange(len(labels)), labels]).sum())
        )
        correct.append(int((picked.argmax(-1) == labels).sum()))
        counts.append(len(labels))
    return _masked_metrics(correct, nll, counts)


def baseline(model_dir: str, examples, max_batches: int) -> dict:
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
    for _, _, _, labels in _eval_windows(model_dir, examples, max_batches):
        correct.append(int((labels == top).sum()))
        nll.append(float(-log_probs[labels].sum()))
        sizes.append(len(labels))
    return {
        "name": "most frequent token / unigram",
        **_masked_metrics(correct, nll, sizes),
    }


def parity_inputs(model_dir: str, examples, count: int) -> list[dict]:
    """Masked eval windows as inputs of the bare network."""
    return [
        {"token_ids": inputs[np.newaxis], "padding_mask": padding[np.newaxis]}
        for inputs, padding, _, _ in _eval_windows(model_dir, examples, count)
    ]
