"""Training data: transformed examples streamed with TFXIO, then packed.

Causal LM packing follows GPT-2: every document is prefixed with the
end-of-text token, documents are concatenated, and the stream is cut into
windows of `sequence_length + 1` tokens (inputs are the first
`sequence_length`, labels the last). Long documents span several windows, so
nothing is truncated away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf
from tfx_bsl.public import tfxio

TOKEN_IDS_FEATURE = "input_ids"

DatasetFactory = Callable[..., tf.data.Dataset]


def documents_as_ragged(features: dict) -> tf.RaggedTensor:
    """The batch's token ids as a RaggedTensor [batch, None] (int32)."""
    ids = features[TOKEN_IDS_FEATURE]
    if isinstance(ids, tf.sparse.SparseTensor):
        ids = tf.RaggedTensor.from_sparse(ids)
    return tf.cast(ids, tf.int32)


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
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=64,
        shuffle=repeat,
        shuffle_seed=seed,
        num_epochs=None if repeat else 1,
    )
    documents = data_accessor.tf_dataset_factory(
        list(file_patterns), options, schema
    ).map(documents_as_ragged)
    windows = pack_documents(documents, sequence_length, bos_id)
    if repeat:
        windows = windows.shuffle(1024, seed=seed)
    return windows.batch(batch_size, drop_remainder=True).prefetch(
        tf.data.AUTOTUNE
    )
