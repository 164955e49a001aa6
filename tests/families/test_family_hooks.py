"""Every family's hooks, run for two training steps on canned data.

Each family's real `preprocessing_fn` transforms a few raw records, the
Trainer's entry point trains and exports for two steps through the one
`train` template, and the validator's and TFLite exporter's hooks score
the exported model, so a family is covered without a pipeline run.
"""

import csv
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizers' ops

from textmill.components.model_validator.gate import SAMPLES_KEY
from textmill.config import with_overrides
from textmill.families import FAMILIES, FamilySpec, get_family, load_family
from textmill.families.base import Family
from textmill.families.translation.family import (
    TranslationFamily,
    load_eval_pairs,
)
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits, token_nll
from textmill.trainer.mean_nll import VAL_NLL
from textmill.trainer.training import HISTORY_FILE

from .harness import (
    TRAIN_STEPS,
    VOCAB_SIZE,
    harness_config,
    train_family,
    transform_examples,
)

WORDS = (
    "river stone lantern orchard harbor meadow signal copper violet ember "
    "window garden market thunder pepper ribbon canyon silver marble fable"
).split()
EVAL_UNITS = 3


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
    return " ".join(words).capitalize() + "."


def _document(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))


def _raw(spec: FamilySpec, count: int, seed: int) -> tuple[dict, list]:
    """The raw feature spec and `count` records of what the family reads:
    sentence pairs, (text, label) or (text, target) pairs, or documents."""
    rng = random.Random(seed)
    text = tf.io.FixedLenFeature([], tf.string)
    if spec.sentence_pairs:
        rows = [
            {
                "sentence_a": _sentence(rng),
                "sentence_b": _sentence(rng),
                "is_next": index % 2,
            }
            for index in range(count)
        ]
        label = tf.io.FixedLenFeature([], tf.int64)
        return {"sentence_a": text, "sentence_b": text, "is_next": label}, rows
    if spec.label_field:
        # The label is a word the text holds, so it can be learned.
        rows = []
        for index in range(count):
            label = WORDS[index % 3]
            rows.append({"text": f"{label} {_document(rng)}", "target": label})
        return {"text": text, "target": text}, rows
    if spec.target_field:
        rows = [
            {"text": _document(rng), "target": _sentence(rng)}
            for _ in range(count)
        ]
        return {"text": text, "target": text}, rows
    return {"text": text}, [{"text": _document(rng)} for _ in range(count)]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def trained(request, tmp_path_factory):
    """A family's transformed splits and the model two steps trained."""
    name = request.param
    directory = str(tmp_path_factory.mktemp(name))
    spec, train_rows = _raw(get_family(name), 24, seed=0)
    _, eval_rows = _raw(get_family(name), 8, seed=1)
    transformed = transform_examples(
        directory,
        harness_config(name),
        spec,
        {"train": train_rows, "eval": eval_rows},
    )
    model_uri = train_family(directory, transformed, EVAL_UNITS)
    return name, transformed, model_uri, directory


def test_template_trains_exports_and_describes_the_model(trained):
    name, _, model_uri, directory = trained
    model_dir = os.path.join(model_uri, "Format-Serving")
    metadata = read_model_metadata(model_dir)
    assert metadata["family"] == name
    assert metadata["preset"] == "tiny"
    assert metadata["train_steps"] == TRAIN_STEPS
    # The model's vocabulary is the one Transform learned, at most the
    # size transform_config asked for.
    assert 0 < metadata["vocabulary_size"] <= VOCAB_SIZE
    # One epoch of two steps, its loss and eval curve logged.
    with open(os.path.join(directory, "model_run", HISTORY_FILE)) as f:
        history = f.read().splitlines()
    assert len(history) == 2 and VAL_NLL in history[0].split(",")
    # The bare network, at the length the metadata records.
    network = SavedModelLogits(os.path.join(model_uri, "Format-Network"))
    assert network.sequence_length == metadata["sequence_length"]


def test_evaluate_and_baseline_score_the_same_units(trained):
    name, transformed, model_uri, directory = trained
    family = load_family(name)
    model_dir = os.path.join(model_uri, "Format-Serving")
    candidate = family.evaluate(model_dir, transformed.examples, EVAL_UNITS)
    baseline = family.baseline(model_dir, transformed.examples, EVAL_UNITS)
    assert baseline["name"]
    gate = family.spec.gate_metric
    for metric in {gate, family.spec.baseline_gate_metric}:
        for metrics in (candidate, baseline):
            value = metrics[metric]
            assert np.isfinite(value)
            if metric == "perplexity":
                # Two steps learn little: near the vocabulary's size.
                vocabulary = read_model_metadata(model_dir)["vocabulary_size"]
                assert 1.0 < value < 10 * vocabulary
            else:
                assert 0.0 <= value <= 1.0
    units = len(candidate[SAMPLES_KEY][gate]["numerator"])
    assert units == len(baseline[SAMPLES_KEY][gate]["numerator"])
    assert 0 < units <= EVAL_UNITS
    _assert_curve_ends_where_the_gate_measures(
        family, candidate, transformed, model_uri, directory
    )


def _assert_curve_ends_where_the_gate_measures(
    family, candidate, transformed, model_uri, directory
):
    """The Trainer scored the validator's eval units (the template passes
    `eval_units`; masked LMs with the same masks): the curve's last
    val_nll is ln(the validator's perplexity) to float32 precision, and
    its accuracy is the validator's. Keras's row-averaged val_loss misses
    by up to 0.3 % where rows carry unequal numbers of target tokens
    (summaries, masked windows, 3 units in batches of 2)."""
    with open(os.path.join(directory, "model_run", HISTORY_FILE)) as f:
        last = {k: float(v) for k, v in list(csv.DictReader(f))[-1].items()}
    if "perplexity" in candidate:
        log_perplexity = np.log(candidate["perplexity"])
    elif isinstance(family, TranslationFamily):
        log_perplexity = _teacher_forced_nll(family, transformed, model_uri)
    else:
        # Classifiers: one label per row, rows weigh alike.
        log_perplexity = last["val_loss"]
    assert last[VAL_NLL] == pytest.approx(log_perplexity, rel=1e-5)
    if "accuracy" in candidate:
        assert last["val_sparse_categorical_accuracy"] == pytest.approx(
            candidate["accuracy"], abs=1e-6
        )


def _teacher_forced_nll(family, transformed, model_uri) -> float:
    """The reference targets' mean NLL per token under the exported bare
    network, the decoder fed each reference (the validator's sums; its
    translation gate scores chrF, not perplexity)."""
    model_dir = os.path.join(model_uri, "Format-Serving")
    network = SavedModelLogits(os.path.join(model_uri, "Format-Network"))
    feeds = family.parity_inputs(model_dir, transformed.examples, EVAL_UNITS)
    pairs = load_eval_pairs(transformed.examples, EVAL_UNITS)
    nll, tokens = 0.0, 0
    for feed, pair in zip(feeds, pairs, strict=True):
        logits = network(feed)[0, : len(pair.target_ids)]
        nll += float(token_nll(logits, pair.target_ids).sum())
        tokens += len(pair.target_ids)
    return nll / tokens


def test_parity_inputs_feed_the_bare_network(trained):
    name, transformed, model_uri, _ = trained
    model_dir = os.path.join(model_uri, "Format-Serving")
    inputs = load_family(name).parity_inputs(model_dir, transformed.examples, 2)
    network = SavedModelLogits(os.path.join(model_uri, "Format-Network"))
    assert len(inputs) == 2
    for feed in inputs:
        assert set(feed) == set(network.input_specs)
        logits = network(feed)
        assert logits.shape[0] == 1 and np.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_registry_loads_each_family_once(name):
    family = load_family(name)
    assert isinstance(family, Family)
    assert family.spec is get_family(name)
    assert load_family(name) is family


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_unknown_preset_is_refused_alike_in_every_family(name):
    config = with_overrides(harness_config(name), train={"preset": "huge"})
    with pytest.raises(ValueError, match="preset='huge' is not a .* preset"):
        load_family(name).transform_config(config)


def test_a_registry_line_naming_no_class_is_refused():
    spec = FamilySpec(
        name="broken",
        implementation="textmill.families.bert_nsp.family:NoSuchFamily",
        gate_metric="accuracy",
        higher_is_better=True,
    )
    with pytest.raises(ValueError, match="has no class 'NoSuchFamily'"):
        spec.load()


@pytest.mark.slow
def test_a_masked_lm_preset_is_fine_tuned_by_the_classifier(trained):
    """A `longformer` run leaves a preset; `--init-from` it, the
    classifier's Transform imports its tokenizer and its model starts from
    its backbone."""
    name, _, model_uri, directory = trained
    if name != "longformer":
        pytest.skip("only the longformer family leaves a Longformer preset")
    from textmill.families.base import TrainingRun
    from textmill.families.longformer_classifier.family import ClassifierPlan
    from textmill.serving.model_formats import preset_model_path
    from textmill.tokenization.bpe_files import HF_VOCAB_FILENAME
    from textmill.trainer.models.longformer import LongformerBackbone

    preset = preset_model_path(model_uri)
    with open(os.path.join(preset, HF_VOCAB_FILENAME)) as f:
        vocabulary_size = len(json.load(f))
    config = with_overrides(
        harness_config("longformer_classifier"), train={"init_from": preset}
    )
    spec, rows = _raw(get_family("longformer_classifier"), 16, seed=2)
    tuned = os.path.join(directory, "classifier")
    transformed = transform_examples(
        tuned, config, spec, {"train": rows, "eval": rows[:4]}
    )
    classifier_uri = train_family(tuned, transformed, EVAL_UNITS)
    metadata = read_model_metadata(
        os.path.join(classifier_uri, "Format-Serving")
    )
    assert metadata["vocabulary_size"] == vocabulary_size
    family = load_family("longformer_classifier")
    run = TrainingRun(None, config.train, None)
    plan = ClassifierPlan(
        vocabulary_size, {}, {}, metadata["sequence_length"], ("a", "b")
    )
    started = family.build_model(run, plan).backbone
    pretrained = LongformerBackbone.from_preset(preset)
    for ours, theirs in zip(started.weights, pretrained.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
