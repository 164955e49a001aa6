"""Training data: transformed examples streamed with TFXIO, then packed.

Causal LM packing follows GPT-2: every document is prefixed with the
end-of-text token, documents are concatenated, and the stream is cut into
windows of `sequence_length + 1` tokens (inputs are the first
`sequence_length`, labels the last). Long documents span several windows, so
nothing is truncated away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import tensorflow as tf
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.public import tfxio

from textmill.features import (
    DECODER_PADDING_MASK_FEATURE,
    DECODER_TOKEN_IDS_FEATURE,
    ENCODER_PADDING_MASK_FEATURE,
    ENCODER_TOKEN_IDS_FEATURE,
    INPUT_IDS_FEATURE,
    LOSS_MASK_FEATURE,
    SOURCE_IDS_FEATURE,
    TARGET_IDS_FEATURE,
)

DatasetFactory = Callable[..., tf.data.Dataset]


def documents_as_ragged(
    features: dict, name: str = INPUT_IDS_FEATURE
) -> tf.RaggedTensor:
    """A VarLen int feature of the batch (the token ids by default) as a
    RaggedTensor [batch, None] (int32)."""
    values = features[name]
    if isinstance(values, tf.sparse.SparseTensor):
        values = tf.RaggedTensor.from_sparse(values)
    return tf.cast(values, tf.int32)


def pack_documents(
    documents: tf.data.Dataset,
    sequence_length: int,
    bos_id: int,
) -> tf.data.Dataset:
    """Packs a dataset of ragged document batches into LM windows.

    Args:
        documents: elements are RaggedTensors [batch, None] of token ids.
        sequence_length: tokens per model input.
        bos_id: id prepended to each document (GPT-2's end-of-text).

    Returns:
        Unbatched elements `({"token_ids", "padding_mask"}, labels)`, each
        of shape [sequence_length].
    """

    def with_bos(docs: tf.RaggedTensor) -> tf.Tensor:
        bos = tf.fill([docs.nrows(), 1], tf.constant(bos_id, tf.int32))
        # [batch, 1 + None] -> flat [tokens]
        return tf.concat([bos, docs], axis=1).flat_values

    def to_window(window: tf.Tensor):
        inputs = window[:-1]
        return (
            {
                "token_ids": inputs,
                "padding_mask": tf.ones_like(inputs, tf.bool),
            },
            window[1:],
        )

    return (
        documents.map(with_bos, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .batch(sequence_length + 1, drop_remainder=True)
        .map(to_window, num_parallel_calls=tf.data.AUTOTUNE)
    )


def ordered_records(file_patterns: Sequence[str]) -> tf.data.Dataset:
    """The serialized `tf.Example`s of a split, in an order that depends on
    nothing but their content: the one order of eval units.

    Transform writes a split as any number of shards, and which record
    lands in which shard (and in what order) may change from one run to
    the next. Sorting the records by the SHA-256 of their bytes makes "the
    first N eval windows, pairs or examples", which the Trainer's val_nll
    and ModelValidator score, the same set for the same data however it
    was sharded, so the metrics of separate runs are comparable.

    The split is read whole and held in memory to sort it (the eval split,
    `ingest.eval_fraction` of the corpus).

    Args:
        file_patterns: GZIP TFRecord files or globs of one split.

    Returns:
        A dataset of scalar strings.
    """
    files = sorted(
        {
            path
            for pattern in file_patterns
            for path in tf.io.gfile.glob(pattern)
        }
    )
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    ordered = sorted(
        records.as_numpy_iterator(),
        key=lambda record: (hashlib.sha256(record).digest(), record),
    )
    return tf.data.Dataset.from_tensor_slices(tf.constant(ordered, tf.string))


def transformed_batches(
    file_patterns: Sequence[str],
    data_accessor,
    schema,
    *,
    repeat: bool,
    seed: int,
    batch_size: int = 64,
    drop_final_batch: bool = False,
    label_key: str | None = None,
) -> tf.data.Dataset:
    """Batches of transformed examples as feature dicts: the one reader of
    the Trainer's splits.

    Training (`repeat`) streams shuffled batches with TFXIO; evaluation
    reads the split once in `ordered_records`' order, the order in which
    ModelValidator scores it.

    Args:
        file_patterns: transformed example files of one split.
        data_accessor: `fn_args.data_accessor` of the TFX Trainer.
        schema: the transformed schema (TFTransformOutput).
        repeat: shuffle and loop forever (training) or read once (eval).
        seed: shuffle seed.
        batch_size: examples per batch.
        drop_final_batch: drop a last batch smaller than `batch_size`.
        label_key: a feature returned apart, as `(features, label)`.
    """
    if not repeat:
        spec = schema_utils.schema_as_feature_spec(schema).feature_spec
        batches = (
            ordered_records(file_patterns)
            .batch(batch_size, drop_remainder=drop_final_batch)
            .map(lambda records: tf.io.parse_example(records, spec))
        )
        if label_key:
            batches = batches.map(
                lambda features: (
                    {k: v for k, v in features.items() if k != label_key},
                    features[label_key],
                )
            )
        return batches
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size,
        shuffle=True,
        shuffle_seed=seed,
        num_epochs=None,
        drop_final_batch=drop_final_batch,
        label_key=label_key,
    )
    return data_accessor.tf_dataset_factory(
        list(file_patterns), options, schema
    )


def causal_lm_dataset(
    file_patterns: Sequence[str],
    data_accessor,
    schema,
    *,
    batch_size: int,
    sequence_length: int,
    bos_id: int,
    repeat: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batched, packed causal LM windows from transformed examples.

    Args:
        file_patterns: transformed example files of one split.
        data_accessor: `fn_args.data_accessor` of the TFX Trainer.
        schema: the transformed schema (TFTransformOutput).
        batch_size: global batch size.
        sequence_length: tokens per window.
        bos_id: end-of-text id used as the document separator.
        repeat: loop over the data forever (training) or once (eval).
        seed: shuffle seed.

    Returns:
        A dataset of `({"token_ids", "padding_mask"}, labels)` batches.
    """
    documents = transformed_batches(
        file_patterns, data_accessor, schema, repeat=repeat, seed=seed
    ).map(documents_as_ragged)
    windows = pack_documents(documents, sequence_length, bos_id)
    return _batched(windows, batch_size, repeat=repeat, seed=seed)


def _batched(
    rows: tf.data.Dataset, batch_size: int, *, repeat: bool, seed: int
) -> tf.data.Dataset:
    """Batches of rows: full and shuffled when training (`repeat`); in
    order, the last one partial, when evaluating, so every eval row the
    validator scores is in val_nll too."""
    if repeat:
        rows = rows.shuffle(1024, seed=seed)
    return rows.batch(batch_size, drop_remainder=repeat).prefetch(
        tf.data.AUTOTUNE
    )


def pad_prompted_examples(
    features: dict, sequence_length: int, bos_id: int
) -> tuple[dict, tf.Tensor, tf.Tensor]:
    """One padded training row per (prompt, target) example.

    Args:
        features: a batch with `input_ids` and `loss_mask` of equal ragged
            lengths, at most `sequence_length` tokens each.
        sequence_length: tokens per model input.
        bos_id: id prepended to each example (GPT-2's end-of-text), with
            loss mask 0.

    Returns:
        `({"token_ids", "padding_mask"}, labels, sample_weight)`, each
        [batch, sequence_length]; the weight of a label is its token's loss
        mask, so only target tokens are learned.
    """
    ids = documents_as_ragged(features)
    mask = documents_as_ragged(features, LOSS_MASK_FEATURE)
    bos = tf.fill([ids.nrows(), 1], tf.constant(bos_id, tf.int32))
    shape = [None, sequence_length + 1]
    ids = tf.concat([bos, ids], axis=1)
    padded_ids = ids.to_tensor(0, shape=shape)
    padded_mask = tf.concat([tf.zeros_like(bos), mask], axis=1).to_tensor(
        0, shape=shape
    )
    inputs = padded_ids[:, :-1]
    lengths = tf.minimum(ids.row_lengths(), sequence_length)
    return (
        {
            "token_ids": inputs,
            "padding_mask": tf.sequence_mask(lengths, sequence_length),
        },
        padded_ids[:, 1:],
        tf.cast(padded_mask[:, 1:], tf.float32),
    )


def prompted_lm_dataset(
    file_patterns: Sequence[str],
    data_accessor,
    schema,
    *,
    batch_size: int,
    sequence_length: int,
    bos_id: int,
    repeat: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batches of (prompt, target) examples with a loss on the target only.

    Unlike `causal_lm_dataset`, examples are not packed: each is one row,
    padded, so a target never attends to another example's prompt.

    Args: as `causal_lm_dataset`.

    Returns:
        A dataset of `({"token_ids", "padding_mask"}, labels,
        sample_weight)` batches.
    """
    rows = (
        transformed_batches(
            file_patterns, data_accessor, schema, repeat=repeat, seed=seed
        )
        .map(
            lambda features: pad_prompted_examples(
                features, sequence_length, bos_id
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .unbatch()
    )
    return _batched(rows, batch_size, repeat=repeat, seed=seed)


def seq2seq_inputs(
    source_ids: tf.RaggedTensor,
    target_ids: tf.RaggedTensor,
    sequence_length: int,
    start_id: int,
) -> tuple[dict, tf.Tensor, tf.Tensor]:
    """An encoder-decoder's padded inputs, labels and label weights.

    Args:
        source_ids: int32 [batch, None], at most `sequence_length` each.
        target_ids: int32 [batch, None], end-of-text last, at most
            `sequence_length` each.
        sequence_length: positions per side.
        start_id: the decoder's first input token.

    Returns:
        `({"encoder_token_ids", "encoder_padding_mask",
        "decoder_token_ids", "decoder_padding_mask"}, labels,
        sample_weight)`, each [batch, sequence_length]: the decoder reads
        the start token then the target shifted right, and learns the
        target (weight 1 on its tokens, 0 on padding).
    """
    shape = [None, sequence_length]
    rows = target_ids.nrows()
    start = tf.fill([rows, 1], tf.constant(start_id, tf.int32))
    # [start, t0, ..., t(n-2)]: the decoder predicts t(i) after t(i-1).
    decoder_ids = tf.concat([start, target_ids[:, :-1]], axis=1)

    def dense(ids: tf.RaggedTensor):
        return ids.to_tensor(0, shape=shape), tf.sequence_mask(
            ids.row_lengths(), sequence_length, tf.int32
        )

    encoder_tokens, encoder_mask = dense(source_ids)
    decoder_tokens, decoder_mask = dense(decoder_ids)
    labels, weights = dense(target_ids)
    inputs = {
        ENCODER_TOKEN_IDS_FEATURE: encoder_tokens,
        ENCODER_PADDING_MASK_FEATURE: encoder_mask,
        DECODER_TOKEN_IDS_FEATURE: decoder_tokens,
        DECODER_PADDING_MASK_FEATURE: decoder_mask,
    }
    return inputs, labels, tf.cast(weights, tf.float32)


def seq2seq_dataset(
    file_patterns: Sequence[str],
    data_accessor,
    schema,
    *,
    batch_size: int,
    sequence_length: int,
    bos_id: int,
    repeat: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batches of (source, target) examples for an encoder-decoder, one
    padded row per example (see `seq2seq_inputs`; `bos_id` is the
    decoder's start token).

    Args: as `causal_lm_dataset`.

    Returns:
        A dataset of `(inputs, labels, sample_weight)` batches.
    """
    rows = (
        transformed_batches(
            file_patterns, data_accessor, schema, repeat=repeat, seed=seed
        )
        .map(
            lambda features: seq2seq_inputs(
                documents_as_ragged(features, SOURCE_IDS_FEATURE),
                documents_as_ragged(features, TARGET_IDS_FEATURE),
                sequence_length,
                bos_id,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .unbatch()
    )
    return _batched(rows, batch_size, repeat=repeat, seed=seed)
