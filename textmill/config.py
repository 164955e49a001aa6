"""Typed, frozen configuration, loadable from YAML.

Every knob a user may turn lives here, grouped by pipeline stage, with its
default: this module is the one source of defaults for the pipeline, the
components and the trainer, which all import it and none of which it
imports. Components receive plain values taken from these dataclasses;
nothing downstream parses configuration again.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

if typing.TYPE_CHECKING:
    from textmill.families import Family


# The peak learning rate of families that declare none (see
# `FamilySpec.learning_rate`).
DEFAULT_LEARNING_RATE = 1e-3


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """How TextExampleGen reads, cleans and splits documents.

    Args:
        input_patterns: file patterns (local or gs://, globs allowed).
        input_format: "auto", "text", "jsonl" or "csv".
        text_field: JSON field or CSV column that holds the text.
        target_field: JSON field or CSV column of each record's target
            text, for families that learn (text, target) pairs; "" takes
            the family's default ("summary" for summarization).
        label_field: JSON field or CSV column of each record's label (a
            string), for classifiers; "" takes the family's default
            ("label" for longformer_classifier).
        text_unit: for plain text, "file" (one document per file) or
            "paragraph" (documents separated by blank lines).
        min_chars: shorter documents are skipped (counted as too_short).
        max_chars: longer documents are skipped (counted as too_long).
        eval_fraction: share of documents hashed into the eval split.
        strict: stop at the first bad record instead of counting it.
    """

    input_patterns: tuple[str, ...] = ()
    input_format: str = "auto"
    text_field: str = "text"
    target_field: str = ""
    label_field: str = ""
    text_unit: str = "file"
    min_chars: int = 32
    max_chars: int = 1_000_000
    eval_fraction: float = 0.1
    strict: bool = False

    def validate(self) -> None:
        if not self.input_patterns:
            raise ConfigError(
                "ingest.input_patterns is empty: pass --data PATTERN (a file, "
                "a glob or a gs:// path)."
            )
        _check_choice(
            "ingest.input_format",
            self.input_format,
            ("auto", "text", "jsonl", "csv"),
        )
        _check_choice("ingest.text_unit", self.text_unit, ("file", "paragraph"))
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(
                f"ingest.eval_fraction must be in (0, 1), got "
                f"{self.eval_fraction}."
            )
        if not 0 <= self.min_chars < self.max_chars:
            raise ConfigError(
                f"ingest.min_chars ({self.min_chars}) must be >= 0 and below "
                f"ingest.max_chars ({self.max_chars})."
            )


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """The byte-level BPE vocabulary learned (or imported) in Transform.

    Args:
        vocab_size: target vocabulary size when learning; 0 takes the
            model preset's default.
        min_frequency: merges seen fewer times than this are not learned.
        init_from: checkpoint directory with vocab.json and merges.txt;
            when set, the vocabulary is imported instead of learned.
    """

    vocab_size: int = 0
    min_frequency: int = 2
    init_from: str | None = None

    def validate(self) -> None:
        if self.vocab_size and self.vocab_size < 257:
            raise ConfigError(
                f"tokenizer.vocab_size must be 0 (preset default) or >= 257 "
                f"(256 bytes + end-of-text), got {self.vocab_size}."
            )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Trainer hyper-parameters.

    Args:
        preset: model preset name of the family (e.g. "tiny", "distilgpt2").
        sequence_length: tokens per packed training window.
        batch_size: global batch size, kept fixed across device layouts.
        train_steps: optimizer steps.
        eval_steps: batches of the eval split evaluated after training.
        learning_rate: peak learning rate (linear warm-up, cosine decay);
            0 takes the family's default (`FamilySpec.learning_rate`,
            else `DEFAULT_LEARNING_RATE`).
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        checkpoint_every: steps between resumable checkpoints.
        seed: seed of initialisation and data order.
        mixed_precision: "auto" (on where the hardware gains), "on", "off".
        init_from: a keras-hub preset directory to fine-tune from.
        distill_from: a keras-hub GPT-2 preset directory (a run's
            `preset_dir`, or `textmill convert gpt2`'s output) whose model
            teaches the student (`preset`) by distillation; the student
            takes the teacher's tokenizer and every other layer.
        distill_temperature: softens teacher and student distributions
            in the KL term.
        distill_kl_weight, distill_lm_weight, distill_cosine_weight:
            weights of the KL, the ordinary LM loss and the hidden-state
            cosine terms (DistilGPT2's: 5, 2, 1).
    """

    preset: str = "tiny"
    sequence_length: int = 128
    batch_size: int = 16
    train_steps: int = 300
    eval_steps: int = 20
    learning_rate: float = 0.0
    warmup_steps: int = 30
    weight_decay: float = 0.01
    checkpoint_every: int = 50
    seed: int = 0
    mixed_precision: str = "auto"
    init_from: str | None = None
    distill_from: str | None = None
    distill_temperature: float = 2.0
    distill_kl_weight: float = 5.0
    distill_lm_weight: float = 2.0
    distill_cosine_weight: float = 1.0

    def validate(self) -> None:
        for name in (
            "sequence_length",
            "batch_size",
            "train_steps",
            "eval_steps",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"train.{name} must be >= 1, got {getattr(self, name)}."
                )
        if self.learning_rate < 0:
            raise ConfigError(
                f"train.learning_rate must be > 0, or 0 for the family's "
                f"default; got {self.learning_rate}."
            )
        _check_choice(
            "train.mixed_precision", self.mixed_precision, ("auto", "on", "off")
        )
        self._validate_distillation()

    @property
    def peak_learning_rate(self) -> float:
        """`learning_rate`, or the shared default where it is 0 (a
        PipelineConfig's `trainer_config` puts the family's default
        there first)."""
        return self.learning_rate or DEFAULT_LEARNING_RATE

    def _validate_distillation(self) -> None:
        if self.distill_from and self.init_from:
            raise ConfigError(
                f"train.distill_from={self.distill_from!r} and "
                f"train.init_from={self.init_from!r} are both set: a "
                "distilled student is initialised from its teacher; drop "
                "--init-from."
            )
        if self.distill_temperature <= 0:
            raise ConfigError(
                "train.distill_temperature must be > 0, got "
                f"{self.distill_temperature}; 2.0 is the default."
            )
        weights = (
            "distill_kl_weight",
            "distill_lm_weight",
            "distill_cosine_weight",
        )
        for name in weights:
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"train.{name} must be >= 0, got {getattr(self, name)}."
                )
        if not any(getattr(self, name) for name in weights):
            raise ConfigError(
                "train.distill_kl_weight, distill_lm_weight and "
                "distill_cosine_weight are all 0: nothing to learn; the "
                "defaults are 5, 2 and 1."
            )


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """The gate between training and pushing.

    Args:
        max_perplexity: absolute ceiling on eval perplexity.
        min_accuracy: absolute floor on eval accuracy (families that
            report one: masked-token accuracy, NSP accuracy).
        min_rouge_l: absolute floor on eval ROUGE-L F1 (summarization).
        max_regression: the candidate's gate metric may be worse than the
            last blessed model's by at most this fraction (0.05 = 5 %); it
            is refused only when the whole `confidence` interval of the
            paired bootstrap is worse than that.
        max_eval_windows: eval units scored: packed windows (causal and
            masked LM), pairs (NSP) or examples (summarization); 0 = all.
            The Trainer's val_nll is measured on the same units.
        min_baseline_gain: the candidate must beat the family's trivial
            baseline (unigram, most frequent token, majority class) by this
            relative gain, and with confidence.
        enforce_baseline: False reports the baseline without holding the
            candidate to it (for smoke runs too short to learn; a model
            that learned nothing is then blessed, so never in production).
        confidence: level of the paired-bootstrap intervals.
    """

    max_perplexity: float = 1e4
    min_accuracy: float = 0.0
    min_rouge_l: float = 0.0
    max_regression: float = 0.05
    max_eval_windows: int = 200
    min_baseline_gain: float = 0.05
    enforce_baseline: bool = True
    confidence: float = 0.95

    def validate(self) -> None:
        if self.max_perplexity <= 1:
            raise ConfigError(
                f"validation.max_perplexity must be > 1, got "
                f"{self.max_perplexity}."
            )
        for name in ("min_accuracy", "min_rouge_l"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(
                    f"validation.{name} must be in [0, 1], got "
                    f"{getattr(self, name)}."
                )
        for name in ("max_regression", "min_baseline_gain"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"validation.{name} must be >= 0, got "
                    f"{getattr(self, name)}."
                )
        if not 0 < self.confidence < 1:
            raise ConfigError(
                f"validation.confidence must be in (0, 1), got "
                f"{self.confidence}; 0.95 is the default."
            )


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What is exported next to the SavedModel.

    Args:
        tflite_variants: any of "float32", "int8" (dynamic range), "float16".
        parity_windows: eval windows compared between TFLite and SavedModel.
        max_new_tokens: default continuation length of `generate`.
    """

    tflite_variants: tuple[str, ...] = ("float32", "int8")
    parity_windows: int = 16
    max_new_tokens: int = 32

    def validate(self) -> None:
        for variant in self.tflite_variants:
            _check_choice(
                "export.tflite_variants",
                variant,
                ("float32", "int8", "float16"),
            )


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One pipeline: a model family, its data, and where things go.

    Args:
        family: model family, one of `textmill.families.FAMILIES`.
        work_dir: pipeline root, metadata and summary live here.
        serving_dir: models are pushed to serving_dir/model_name/VERSION/;
            "" means `work_dir/serving`.
        model_name: name under serving_dir; defaults to the family.
        pipeline_name: TFX pipeline name; defaults to "textmill-" + family
            (with "-" for "_", as Vertex AI names allow [a-z0-9-]).
        beam_pipeline_args: passed unchanged to every Beam step.
    """

    family: str = "distilgpt2"
    work_dir: str = "work"
    serving_dir: str = ""
    model_name: str = ""
    pipeline_name: str = ""
    beam_pipeline_args: tuple[str, ...] = (
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    )
    ingest: IngestConfig = IngestConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    train: TrainConfig = TrainConfig()
    validation: ValidationConfig = ValidationConfig()
    export: ExportConfig = ExportConfig()

    def __post_init__(self):
        if not self.serving_dir:
            object.__setattr__(
                self, "serving_dir", default_serving_dir(self.work_dir)
            )
        if not self.model_name:
            object.__setattr__(self, "model_name", self.family)
        if not self.pipeline_name:
            object.__setattr__(
                self, "pipeline_name", default_pipeline_name(self.family)
            )

    def validate(self) -> PipelineConfig:
        """Checks every field; returns self so calls can chain."""
        families = _families()
        _check_choice("family", self.family, tuple(families))
        if self.ingest.target_field and not families[self.family].target_field:
            raise ConfigError(
                f"ingest.target_field={self.ingest.target_field!r}: family "
                f"{self.family!r} reads text alone; leave target_field empty "
                "or choose a family that learns (text, target) pairs, such "
                "as summarization."
            )
        if self.ingest.label_field and not families[self.family].label_field:
            raise ConfigError(
                f"ingest.label_field={self.ingest.label_field!r}: family "
                f"{self.family!r} reads no labels; leave label_field empty "
                "or choose a classifier, such as longformer_classifier."
            )
        if self.train.distill_from and self.family != "distilgpt2":
            raise ConfigError(
                f"train.distill_from is set but family is {self.family!r}: "
                "distillation trains distilgpt2 students; pass "
                "--family distilgpt2."
            )
        presets = families[self.family].presets
        if self.train.preset not in presets:
            raise ConfigError(
                f"train.preset={self.train.preset!r} is not a preset of "
                f"family {self.family!r}; choose one of {', '.join(presets)}."
            )
        for section in (
            self.ingest,
            self.tokenizer,
            self.train,
            self.validation,
            self.export,
        ):
            section.validate()
        return self

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.work_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.work_dir, "metadata.sqlite")

    @property
    def checkpoint_root(self) -> str:
        return os.path.join(self.work_dir, "checkpoints")

    @property
    def target_field(self) -> str:
        """The target field TextExampleGen reads ("" for none): a
        classifier's label field, or the target of (text, target) pairs."""
        family = _families()[self.family]
        if family.label_field:
            return self.ingest.label_field or family.label_field
        if not family.target_field:
            return ""
        return self.ingest.target_field or family.target_field

    @property
    def trainer_config(self) -> TrainConfig:
        """`train` as the Trainer runs it: a learning rate left at 0 takes
        the family's default."""
        if self.train.learning_rate:
            return self.train
        rate = _families()[self.family].learning_rate
        return dataclasses.replace(
            self.train, learning_rate=rate or DEFAULT_LEARNING_RATE
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _families() -> dict[str, Family]:
    """The family registry, imported when a config is checked, so that this
    module stays below every package that may import it (the registry's
    families themselves take a PipelineConfig)."""
    from textmill.families import FAMILIES

    return FAMILIES


def default_pipeline_name(family: str) -> str:
    return "textmill-" + family.replace("_", "-")


def default_serving_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "serving")


def _derived_fields(config: PipelineConfig) -> dict[str, str]:
    """Top-level fields whose default follows another field."""
    return {
        "serving_dir": default_serving_dir(config.work_dir),
        "model_name": config.family,
        "pipeline_name": default_pipeline_name(config.family),
    }


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(map(str, choices))}; "
            f"got {value!r}."
        )


_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
}


def _typed(name: str, value: Any, hint: Any, default: Any) -> Any:
    """`value` checked against the field's type hint (numbers widened to
    float where a float is expected).

    Raises:
        ConfigError: naming the key, the value received and an example.
    """
    optional = typing.get_origin(hint) in (types.UnionType, typing.Union)
    if optional:
        if value is None:
            return None
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    if typing.get_origin(hint) is tuple:
        items = value if isinstance(value, list | tuple) else (value,)
        return tuple(
            _typed(f"{name}[{i}]", item, str, "")
            for i, item in enumerate(items)
        )
    ok = isinstance(value, hint) and not (
        hint in (int, float) and isinstance(value, bool)
    )
    if hint is float and not isinstance(value, bool):
        # YAML 1.1 reads `1e-3` (no dot) as a string.
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if not ok:
        example = f"; e.g. {name}: {default!r}" if default is not None else ""
        raise ConfigError(
            f"{name} must be {_TYPE_WORDS.get(hint, hint.__name__)}, got "
            f"{value!r}{example}."
        )
    return value


def _build(cls: type, values: Mapping[str, Any], where: str):
    """Builds dataclass `cls` from a mapping, rejecting unknown keys and
    values of the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in {where or 'config'}; "
            f"known keys: {', '.join(sorted(fields))}."
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}{name} must be a mapping.")
            value = _build(type(default), value, f"{where}{name}.")
        else:
            value = _typed(f"{where}{name}", value, hints[name], default)
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> PipelineConfig:
    """Builds a PipelineConfig from nested plain values.

    Raises:
        ConfigError: on unknown keys or wrong section types.
    """
    return _build(PipelineConfig, values, "")


def load_config(path: str) -> PipelineConfig:
    """Reads a YAML file shaped like PipelineConfig.to_dict().

    Raises:
        ConfigError: the file is missing or unreadable, is not YAML, is not
            a mapping, or has unknown keys or values of the wrong type.
    """
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(
            f"--config {path}: no such file; pass the path of a YAML file "
            "shaped like PipelineConfig (see the README)."
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: cannot read it ({e}).") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(
            f"--config {path}: not valid YAML{line}: "
            f"{getattr(e, 'problem', None) or e}."
        ) from None
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping.")
    return config_from_dict(values)


def with_overrides(
    config: PipelineConfig, **sections: Mapping[str, Any]
) -> PipelineConfig:
    """Returns a copy with fields replaced; `sections` maps a section name
    ("train", "ingest", ...) or "top" to the fields to change."""
    merged = config.to_dict()
    for section, values in sections.items():
        target = merged if section == "top" else merged[section]
        target.update({k: v for k, v in values.items() if v is not None})
    # Fields still at the default derived from the old family or work dir
    # follow the new one, unless set explicitly.
    explicit = {k for k, v in sections.get("top", {}).items() if v is not None}
    for key, value in _derived_fields(config).items():
        if key not in explicit and merged[key] == value:
            merged[key] = ""
    return config_from_dict(merged)
