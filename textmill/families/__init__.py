"""Model families: what differs between DistilGPT2, its summarization
fine-tuning, Longformer and BERT NSP.

The pipeline's shape is the same for every family; a family names the
functions that fill it in. Names are dotted paths, imported only where they
run, so building a pipeline does not import model code.

A family module provides:
    preprocessing_fn(inputs, custom_config) -> dict    (Transform)
    transform_config(config) -> dict                   (its custom_config)
    train(fn_args) -> None                             (Trainer, via run_fn)
    evaluate(model_dir, examples, max_batches) -> dict[str, float]
    baseline(model_dir, examples, max_batches) -> dict[str, float]
        (a trivial model's metrics on the units `evaluate` scores; both
        carry per-unit samples, see components/model_validator/gate.py)
    parity_inputs(model_dir, examples, count) -> list[dict[str, np.ndarray]]
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family.

    Args:
        name: the `--family` value.
        module: dotted path of the module with the functions listed above.
        gate_metric: the metric compared with the last blessed model.
        higher_is_better: direction of `gate_metric`.
        baseline_metric: the metric that must beat the family's trivial
            baseline ("" = `gate_metric`).
        sentence_pairs: the data is (sentence_a, sentence_b, is_next) pairs
            made by SentencePairGen instead of whole documents.
        target_field: the default field (jsonl) or column (csv) of each
            record's target text, for families that learn (text, target)
            pairs; "" for families that read text alone.
        presets: the `train.preset` values the family's model accepts,
            checked before any work starts.
    """

    name: str
    module: str
    gate_metric: str
    higher_is_better: bool
    baseline_metric: str = ""
    sentence_pairs: bool = False
    target_field: str = ""
    presets: tuple[str, ...] = ()

    def function(self, name: str) -> Callable:
        """Imports and returns `name` from the family module."""
        return getattr(importlib.import_module(self.module), name)

    @property
    def baseline_gate_metric(self) -> str:
        """The metric compared with the trivial baseline."""
        return self.baseline_metric or self.gate_metric

    @property
    def preprocessing_fn(self) -> str:
        return f"{self.module}.preprocessing_fn"


# Names of textmill.trainer.models.gpt2.GPT2_PRESETS, kept here so that
# checking a config imports no model code (a test keeps them equal).
_GPT2_PRESETS = ("tiny", "tiny4", "distilgpt2", "gpt2")

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="distilgpt2",
            module="textmill.families.distilgpt2.family",
            gate_metric="perplexity",
            higher_is_better=False,
            presets=_GPT2_PRESETS,
        ),
        Family(
            name="longformer",
            module="textmill.families.longformer.family",
            gate_metric="accuracy",
            higher_is_better=True,
            # The most frequent token is a strong accuracy baseline early
            # in training; perplexity tells a model that learned.
            baseline_metric="perplexity",
            presets=("tiny", "base", "longformer_tiny", "longformer_base_4096"),
        ),
        Family(
            name="bert_nsp",
            module="textmill.families.bert_nsp.family",
            gate_metric="accuracy",
            higher_is_better=True,
            sentence_pairs=True,
            presets=("tiny", "base", "bert_tiny", "bert_base"),
        ),
        Family(
            name="summarization",
            module="textmill.families.summarization.family",
            gate_metric="rougeL",
            higher_is_better=True,
            # Lead-1 ROUGE is reported beside; the gate asks that the
            # summary tokens are predicted better than by their unigram.
            baseline_metric="perplexity",
            target_field="summary",
            presets=_GPT2_PRESETS,
        ),
    )
}


def preset_config(
    preset: str, aliases: dict, presets: dict, model: str
) -> dict:
    """A copy of a backbone preset's config, by name or short alias.

    Args:
        preset: the `train.preset` value, e.g. "tiny".
        aliases: short names -> preset names.
        presets: preset name -> {"config": ...}.
        model: the model's name, for the error message.

    Raises:
        ValueError: no such preset.
    """
    name = aliases.get(preset, preset)
    if name not in presets:
        raise ValueError(
            f"preset={preset!r} is not a {model} preset; choose one of "
            f"{', '.join([*aliases, *presets])}."
        )
    return dict(presets[name]["config"])


def get_family(name: str) -> Family:
    """The registered family called `name`.

    Raises:
        ValueError: no such family.
    """
    if name not in FAMILIES:
        raise ValueError(
            f"family={name!r} is unknown; choose one of "
            f"{', '.join(sorted(FAMILIES))}."
        )
    return FAMILIES[name]
