"""The base of every family's exporter: two SavedModels from one model.

A trained model leaves the Trainer as two SavedModels:

- the serving SavedModel (the Trainer's `serving_model_dir`), whose
  signatures take raw strings (and `logits_from_ids`): it tracks the model,
  the Transform graph that tokenizes (so training and serving cannot skew)
  and, for byte-level BPE families, the in-graph tokenizer that turns ids
  back into text;
- the bare network (`model_formats.network_model_path`), the model alone on
  fixed-shape token ids (`logits_from_ids`), the graph TFLite converts: a
  SavedModel with a table initialiser cannot be converted, so nothing of
  the tokenizer is in it.

`Exporter.export` writes both in the same way for every family. A family's
exporter subclasses it and says what differs: its serving signatures
(`add_serving_endpoints`), its bare network's input (`token_ids_specs`) and
logits (`logits_from_ids`), and optionally more bare-network signatures
(`add_network_endpoints`) or files beside it (`write_network_files`). The
signature names are in `serving.signatures`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import INPUT_IDS_FEATURE, TEXT_FEATURE
from textmill.serving.signatures import LOGITS_FROM_IDS
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.transform.byte_bpe_text import MERGES_ASSET, VOCAB_ASSET


def byte_bpe_tokenizer(tft_output: tft.TFTransformOutput) -> ByteBPETokenizer:
    """The in-graph tokenizer over the vocabulary Transform learned or
    imported, its files tracked as SavedModel assets.

    Args:
        tft_output: the output of a byte-level BPE Transform
            (`transform.byte_bpe_text` or summarization's).

    Returns:
        A `ByteBPETokenizer` whose vocabulary and merges files travel with
        any SavedModel that tracks it.
    """
    return ByteBPETokenizer(
        tf.saved_model.Asset(tft_output.vocabulary_file_by_name(VOCAB_ASSET)),
        tf.saved_model.Asset(tft_output.vocabulary_file_by_name(MERGES_ASSET)),
    )


def write_archive(
    directory: str,
    tracked: Sequence,
    add_endpoints: Callable[[keras.export.ExportArchive], None],
) -> None:
    """Writes a SavedModel of `tracked` objects and the signatures that
    `add_endpoints` adds.

    Args:
        directory: the SavedModel directory to write.
        tracked: the Keras models, layers and trackables the signatures use.
        add_endpoints: adds signatures to the `keras.export.ExportArchive`.
    """
    archive = keras.export.ExportArchive()
    for trackable in tracked:
        archive.track(trackable)
    add_endpoints(archive)
    archive.write_out(directory, verbose=False)


class Exporter(abc.ABC):
    """The serving SavedModel and the bare network of one trained model.

    Args:
        model: the trained Keras model.
        tft_output: the Transform output whose graph turns raw features
            into the model's inputs.
        byte_bpe: whether the family tokenizes with byte-level BPE; its
            exporter then has the in-graph `tokenizer` (for detokenizing
            and for tokenizing outside the Transform graph), tracked in the
            serving SavedModel.

    Example:

    ```python
    class ClassifierServing(Exporter):
        def add_serving_endpoints(self, archive):
            archive.add_endpoint(SERVING_DEFAULT, self.classify, [text_spec])

        def token_ids_specs(self):
            return [tf.TensorSpec([1, 128], tf.int32, name="token_ids")]

        def logits_from_ids(self, token_ids):
            return {"logits": self.model({"token_ids": token_ids})}

    ClassifierServing(model, tft_output).export(export_dir, network_dir)
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        tft_output: tft.TFTransformOutput,
        byte_bpe: bool = False,
    ):
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        self.raw_feature_spec = tft_output.raw_feature_spec()
        self.tokenizer = byte_bpe_tokenizer(tft_output) if byte_bpe else None

    # Hooks a family's exporter fills in.
    @abc.abstractmethod
    def add_serving_endpoints(self, archive: keras.export.ExportArchive):
        """Adds the serving SavedModel's signatures to `archive`."""

    @abc.abstractmethod
    def token_ids_specs(self) -> list[tf.TensorSpec]:
        """The inputs of `logits_from_ids`: one fixed-shape window."""

    @abc.abstractmethod
    def logits_from_ids(self, *inputs: tf.Tensor) -> dict:
        """`{"logits": float32}` of the model on `token_ids_specs()`."""

    def add_network_endpoints(self, archive: keras.export.ExportArchive):
        """Adds the bare network's signatures: `logits_from_ids`."""
        self.add_logits_endpoint(archive)

    def write_network_files(self, network_dir: str) -> None:
        """Writes files the bare network's users need beside it (none)."""
        del network_dir

    # Shared by the families.
    def add_logits_endpoint(self, archive: keras.export.ExportArchive):
        """Adds `logits_from_ids`, which both SavedModels have."""
        archive.add_endpoint(
            LOGITS_FROM_IDS, self.logits_from_ids, self.token_ids_specs()
        )

    def raw_feature(self, name: str, values: tf.Tensor) -> tf.Tensor:
        """Request values [batch] shaped as the raw feature `name` is fed
        to the Transform graph ([batch, 1] for a feature of shape [1])."""
        if self.raw_feature_spec[name].shape == [1]:
            return values[:, tf.newaxis]  # [batch] -> [batch, 1]
        return values

    def token_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> ragged int32 ids [batch, None], by the
        Transform graph (the training-time graph) of a byte-level BPE
        family."""
        features = {TEXT_FEATURE: self.raw_feature(TEXT_FEATURE, text)}
        ids = self.tft_layer(features)[INPUT_IDS_FEATURE]
        if isinstance(ids, tf.sparse.SparseTensor):
            ids = tf.RaggedTensor.from_sparse(ids)
        return tf.cast(ids, tf.int32)

    def export(self, export_dir: str, network_dir: str) -> None:
        """Writes the serving SavedModel to `export_dir` and the bare
        network to `network_dir` (see the module doc).

        Args:
            export_dir: the Trainer's `serving_model_dir`.
            network_dir: the bare network's directory, the TFLite source.
        """
        tracked = [self.model, self.tft_layer]
        if self.tokenizer is not None:
            tracked.append(self.tokenizer)

        def add_serving_endpoints(archive: keras.export.ExportArchive):
            self.add_serving_endpoints(archive)
            self.add_logits_endpoint(archive)

        write_archive(export_dir, tracked, add_serving_endpoints)
        write_archive(network_dir, [self.model], self.add_network_endpoints)
        self.write_network_files(network_dir)
