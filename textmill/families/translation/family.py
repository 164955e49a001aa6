"""The `translation` family: keras-hub's BART encoder-decoder trained on
(source, target) sentence pairs with the pipeline's byte-level BPE.

Training teaches the decoder the target given the source (one padded row
per example, loss on the target tokens). Validation translates every eval
source greedily through the exported `translate` signature and scores the
translations against the references with `sacrebleu`, the reference
implementation: `chrf` is the mean sentence-level chrF (per-example
samples for the gate's bootstrap), `corpus_chrf` and `bleu` the
corpus-level scores, all divided by 100. The trivial baseline copies the
source, which a model that learned nothing of the target language does
not beat.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import keras
import keras_hub
import numpy as np
import sacrebleu
import tensorflow as tf
from keras_hub.src.utils.preset_utils import load_json

from textmill.components.eval_windows import eval_rows
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.config import PipelineConfig
from textmill.families import preset_config
from textmill.families.base import Family, TrainingRun
from textmill.families.distilgpt2.family import CausalLMPlan
from textmill.families.translation.export import TranslationServing
from textmill.families.translation.transform import (  # noqa: F401  (Transform's entry)
    END_TOKENS,
    preprocessing_fn,
)
from textmill.features import (
    DECODER_TOKEN_IDS_FEATURE,
    DOCUMENT_FEATURE,
    ENCODER_PADDING_MASK_FEATURE,
    ENCODER_TOKEN_IDS_FEATURE,
    REFERENCE_FEATURE,
    SOURCE_IDS_FEATURE,
    TARGET_IDS_FEATURE,
)
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.signatures import TRANSLATE
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer.data import seq2seq_dataset, seq2seq_inputs
from textmill.trainer.glorot_init import glorot_uniform_kernels
from textmill.transform.byte_bpe_text import MERGES_ASSET, VOCAB_ASSET

# BART architectures; `vocabulary_size` comes from Transform.
BART_PRESETS = {
    # Small enough to learn short sentences (UI strings) on a laptop CPU
    # in minutes.
    "bart_tiny": {
        "config": {
            "num_layers": 2,
            "num_heads": 4,
            "hidden_dim": 128,
            "intermediate_dim": 512,
            "dropout": 0.1,
            "max_sequence_length": 64,
            "vocabulary_size": 4000,
        }
    },
    # keras-hub's bart_base_en architecture.
    "bart_base": {
        "config": {
            "num_layers": 6,
            "num_heads": 12,
            "hidden_dim": 768,
            "intermediate_dim": 3072,
            "dropout": 0.1,
            "max_sequence_length": 1024,
            "vocabulary_size": 50265,
        }
    },
}
BART_ALIASES = {"tiny": "bart_tiny", "base": "bart_base"}
# Sources translated per `translate` call during validation.
_EVAL_BATCH = 16


def bart_preset(preset: str) -> dict:
    """A copy of a BART architecture preset's config.

    Raises:
        ValueError: `preset` is not a BART preset.
    """
    return preset_config(preset, BART_ALIASES, BART_PRESETS, "BART")


def bart_architecture(preset: str, init_from: str | None) -> dict:
    """The architecture trained: the keras-hub preset directory's at
    `init_from` (e.g. written by `textmill convert bart`), else the named
    preset's.

    Raises:
        ValueError: `preset` is not a BART preset, or `init_from` holds no
            BART backbone.
    """
    if not init_from:
        return bart_preset(preset)
    config = load_json(init_from)
    if config.get("class_name") != "BartBackbone":
        raise ValueError(
            f"train.init_from={init_from!r} holds a "
            f"{config.get('class_name')!r}, not a BartBackbone; convert a "
            "Hugging Face BART checkpoint with `textmill convert bart "
            "HF_DIR OUT_DIR` and pass OUT_DIR."
        )
    return config["config"]


def end_token_id(vocab: BpeFiles) -> int:
    """The id of the vocabulary's end-of-text token, the first of
    `END_TOKENS` it has: the decoder's start and stop token.

    Raises:
        KeyError: the vocabulary has none of them.
    """
    tokens = vocab.read_vocab()
    for token in END_TOKENS:
        if token in tokens:
            return tokens.index(token)
    raise KeyError(
        f"{vocab.vocab_path} has none of the end-of-text tokens "
        f"{', '.join(END_TOKENS)}; learn the vocabulary in Transform or "
        "import one that has one of them."
    )


@dataclasses.dataclass(frozen=True)
class EvalPair:
    """One transformed eval example: its token ids and its strings."""

    source_ids: np.ndarray
    target_ids: np.ndarray
    source: str
    reference: str


def load_eval_pairs(examples, count: int) -> list[EvalPair]:
    """The first `count` (0 = all) examples of the eval split.

    Raises:
        ValueError: the eval split holds no example.
    """
    spec = {
        SOURCE_IDS_FEATURE: tf.io.RaggedFeature(tf.int64),
        TARGET_IDS_FEATURE: tf.io.RaggedFeature(tf.int64),
        DOCUMENT_FEATURE: tf.io.FixedLenFeature([], tf.string),
        REFERENCE_FEATURE: tf.io.FixedLenFeature([], tf.string),
    }
    return [
        EvalPair(
            source_ids=features[SOURCE_IDS_FEATURE].astype(np.int32),
            target_ids=features[TARGET_IDS_FEATURE].astype(np.int32),
            source=features[DOCUMENT_FEATURE].decode(),
            reference=features[REFERENCE_FEATURE].decode(),
        )
        for features in eval_rows(examples, spec, count)
    ]


def translate(model, sources: list[str], max_new_tokens: int) -> list[str]:
    """Greedy translations of `sources` by a loaded SavedModel's
    `translate` signature."""
    signature = model.signatures[TRANSLATE]
    translations = []
    for start in range(0, len(sources), _EVAL_BATCH):
        out = signature(
            text=tf.constant(sources[start : start + _EVAL_BATCH]),
            max_new_tokens=tf.constant(max_new_tokens, tf.int32),
        )
        translations.extend(t.decode() for t in out["completion"].numpy())
    return [translation.strip() for translation in translations]


def translation_metrics(hypotheses: list[str], references: list[str]) -> dict:
    """sacrebleu's chrF (sentence mean, with samples; and corpus) and
    corpus BLEU, each divided by 100."""
    sentence = [
        sacrebleu.sentence_chrf(hypothesis, [reference]).score / 100
        for hypothesis, reference in zip(hypotheses, references, strict=True)
    ]
    ones = np.ones(len(sentence))
    return {
        "chrf": metric_value("chrf", sentence, ones),
        "corpus_chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score
        / 100,
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score / 100,
        "examples": len(hypotheses),
        SAMPLES_KEY: samples("chrf", sentence, ones),
    }


def _max_new_tokens(rows: list[EvalPair], sequence_length: int) -> int:
    """As long as the longest reference (end-of-text included), within the
    decoder's positions."""
    return min(max(len(row.target_ids) for row in rows), sequence_length - 1)


class TranslationFamily(Family[CausalLMPlan]):
    """BART encoder-decoders on (source, target) pairs, with `translate`
    signatures."""

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: the vocabulary to learn or import and
        the most tokens per side."""
        preset = bart_architecture(config.train.preset, config.train.init_from)
        return {
            **self.vocabulary_config(config, preset["vocabulary_size"]),
            "sequence_length": self.sequence_length(config),
        }

    def sequence_length(self, config: PipelineConfig) -> int:
        """train.sequence_length within the architecture's position
        tables."""
        preset = bart_architecture(config.train.preset, config.train.init_from)
        return min(config.train.sequence_length, preset["max_sequence_length"])

    def plan(self, run: TrainingRun) -> CausalLMPlan:
        vocab = BpeFiles(
            run.tft_output.vocabulary_file_by_name(VOCAB_ASSET),
            run.tft_output.vocabulary_file_by_name(MERGES_ASSET),
        )
        return CausalLMPlan(vocab, vocab.vocab_size(), end_token_id(vocab))

    def _length(self, run: TrainingRun) -> int:
        preset = bart_architecture(run.hparams.preset, run.hparams.init_from)
        return min(run.hparams.sequence_length, preset["max_sequence_length"])

    def dataset(
        self,
        run: TrainingRun,
        plan: CausalLMPlan,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        return seq2seq_dataset(
            files,
            data_accessor=run.fn_args.data_accessor,
            schema=run.schema,
            batch_size=run.hparams.batch_size,
            sequence_length=self._length(run),
            bos_id=plan.eos_id,
            repeat=repeat,
            seed=run.hparams.seed,
        )

    def build_model(self, run: TrainingRun, plan: CausalLMPlan) -> keras.Model:
        """A BART encoder-decoder of the preset's architecture over the
        learned vocabulary, its projections Glorot-uniform, or the one at
        `train.init_from` (its weights, over the vocabulary Transform
        imported from it).

        Raises:
            ValueError: the model at `train.init_from` has another
                vocabulary size than Transform's vocabulary.
        """
        init_from = run.hparams.init_from
        if init_from:
            logging.info("Initialising BART from preset %s", init_from)
            model = keras_hub.models.BartSeq2SeqLM.from_preset(
                init_from, preprocessor=None
            )
            if model.backbone.vocabulary_size != plan.vocab_size:
                raise ValueError(
                    f"train.init_from={init_from!r} has a vocabulary of "
                    f"{model.backbone.vocabulary_size} tokens but Transform's "
                    f"has {plan.vocab_size}; import the tokenizer of the same "
                    "checkpoint (leave tokenizer.init_from empty or set it "
                    "to the same directory)."
                )
            return model
        config = bart_preset(run.hparams.preset)
        config["vocabulary_size"] = plan.vocab_size
        backbone = keras_hub.models.BartBackbone(**config)
        model = keras_hub.models.BartSeq2SeqLM(backbone, preprocessor=None)
        # keras-hub's 0.02-scale kernels keep cross-attention uniform (the
        # decoder ignores its source) at these widths; see glorot_init.
        glorot_uniform_kernels(model, run.hparams.seed)
        return model

    def export(
        self, run: TrainingRun, plan: CausalLMPlan, model: keras.Model
    ) -> dict:
        """The serving and bare-network SavedModels."""
        sequence_length = self._length(run)
        TranslationServing(
            model, run.tft_output, sequence_length, plan.eos_id
        ).export(run.serving_model_dir, run.network_dir)
        return {
            "vocabulary_size": plan.vocab_size,
            "eos_id": plan.eos_id,
            "sequence_length": sequence_length,
            "precision_policy": model.dtype_policy.name,
        }

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """chrF and BLEU of greedy translations of the eval sources."""
        rows = load_eval_pairs(examples, max_units)
        metadata = read_model_metadata(model_dir)
        max_new_tokens = _max_new_tokens(rows, metadata["sequence_length"])
        hypotheses = translate(
            tf.saved_model.load(model_dir),
            [row.source for row in rows],
            max_new_tokens,
        )
        return {
            **translation_metrics(hypotheses, [r.reference for r in rows]),
            "max_new_tokens": max_new_tokens,
        }

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """Copy-the-source, scored as `evaluate` scores, on its units."""
        rows = load_eval_pairs(examples, max_units)
        return {
            "name": "copy-the-source",
            **translation_metrics(
                [row.source for row in rows], [row.reference for row in rows]
            ),
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Inputs of the bare network for TFLite parity: eval pairs, the
        decoder fed the reference (teacher forcing)."""
        metadata = read_model_metadata(model_dir)
        feeds = []
        for row in load_eval_pairs(examples, count):
            inputs, _, _ = seq2seq_inputs(
                tf.ragged.constant([row.source_ids], tf.int32),
                tf.ragged.constant([row.target_ids], tf.int32),
                metadata["sequence_length"],
                metadata["eos_id"],
            )
            feeds.append(
                {
                    name: inputs[name].numpy()
                    for name in (
                        ENCODER_TOKEN_IDS_FEATURE,
                        ENCODER_PADDING_MASK_FEATURE,
                        DECODER_TOKEN_IDS_FEATURE,
                    )
                }
            )
        return feeds
