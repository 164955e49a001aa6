"""The decoding strategies against uncached references and each other."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from textmill.serving.sampling import (
    CausalLMGenerator,
    SamplerSettings,
    decode_ops,
    generate,
    right_align,
)
from textmill.serving.sampling.token_filters import filter_logits

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [11, 12], [3, 40, 41, 42]]
NEW = 8
MAX_LENGTH = 64  # the model's (conftest)


def log_probs(model, token_ids) -> np.ndarray:
    """Full forward pass (no cache): log-probs `[len, vocab]` of one row."""
    ids = np.asarray(token_ids, np.int32)[None]
    logits = model({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    logits = np.asarray(logits[0], np.float64)
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def uncached_greedy(model, prompt, max_new_tokens, stop=None) -> list[int]:
    """Greedy continuation by full forward passes over the whole prefix."""
    ids = list(prompt)
    for _ in range(max_new_tokens):
        ids.append(int(log_probs(model, ids)[-1].argmax()))
        if ids[-1] == stop:
            break
    return ids[len(prompt) :]


def sequence_log_prob(model, prompt, new_tokens) -> float:
    """Sum of the model's log-probs of `new_tokens` after `prompt`."""
    ids = list(prompt) + list(new_tokens)
    table = log_probs(model, ids)
    return float(
        sum(table[i - 1, ids[i]] for i in range(len(prompt), len(ids)))
    )


def new_tokens(out, row: int, beam: int | None = None) -> list[int]:
    """The generated token ids of one row (and beam) of an output."""
    ids = out.token_ids.numpy()[row]
    mask = out.generated_mask.numpy()[row]
    if beam is not None:
        ids, mask = ids[beam], mask[beam]
    return ids[mask].tolist()


def padded(prompts, left: bool = False):
    """Token ids and padding mask of prompts, padded right (or left)."""
    width = max(map(len, prompts))
    ids = np.zeros([len(prompts), width], np.int32)
    for row, prompt in enumerate(prompts):
        if left:
            ids[row, width - len(prompt) :] = prompt
        else:
            ids[row, : len(prompt)] = prompt
    mask = np.zeros_like(ids, bool)
    for row, prompt in enumerate(prompts):
        span = slice(width - len(prompt), None) if left else slice(len(prompt))
        mask[row, span] = True
    return ids, mask


def run(generator, settings, prompts=PROMPTS, left=False):
    return generator(*padded(prompts, left), settings)


@pytest.fixture(scope="module")
def greedy(generator):
    return run(generator, SamplerSettings(max_new_tokens=NEW))


def rows(out):
    return [new_tokens(out, row) for row in range(len(PROMPTS))]


def test_cached_greedy_equals_uncached_greedy(model, greedy):
    for row, prompt in enumerate(PROMPTS):
        assert new_tokens(greedy, row) == uncached_greedy(model, prompt, NEW)


def test_generated_tokens_follow_each_prompt(greedy):
    ids = greedy.token_ids.numpy()
    for row, prompt in enumerate(PROMPTS):
        assert ids[row, : len(prompt)].tolist() == prompt
        assert greedy.generated_mask.numpy()[row].sum() == NEW
        assert (
            greedy.generated_mask.numpy()[row, len(prompt) : len(prompt) + NEW]
        ).all()


def test_scores_are_the_models_log_probs(model, greedy):
    for row, prompt in enumerate(PROMPTS):
        expected = sequence_log_prob(model, prompt, new_tokens(greedy, row))
        np.testing.assert_allclose(
            greedy.sequence_scores.numpy()[row], expected, atol=1e-4
        )


@pytest.mark.parametrize("batch", [2, 9], ids=["128 rows", "576 rows"])
def test_cached_forward_logits_are_the_models(model, batch):
    """The head's two products (a table pass up to 512 rows, a row pass
    above) give the model's own logits."""
    ids = np.random.default_rng(batch).integers(
        0, model.backbone.vocabulary_size, (batch, MAX_LENGTH), np.int32
    )
    cache = decode_ops.empty_cache(model, batch, MAX_LENGTH)
    logits, _, _ = decode_ops.forward(model, tf.constant(ids), cache, 0)
    expected = model({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    np.testing.assert_allclose(logits, expected, atol=1e-5)


@pytest.fixture(scope="module")
def graph_generator(model):
    """TensorFlow's own kernels: greedy rows decode at their own positions
    (the `generator` fixture's XLA loops move all rows together)."""
    return CausalLMGenerator(model, jit_compile=False)


def test_xla_and_graph_greedy_agree(graph_generator, greedy):
    out = run(graph_generator, SamplerSettings(max_new_tokens=NEW))
    assert rows(out) == rows(greedy)


@pytest.mark.parametrize("stop", [False, True], ids=["no stop", "stop"])
def test_rows_at_their_own_positions_are_the_models_greedy(
    model, graph_generator, greedy, stop
):
    """Each row starts after its own prompt, and a row that stops early
    keeps its tokens while the others go on: tokens, scores and padding as
    the uncached model's greedy continuation of each prompt alone."""
    stop_id = new_tokens(greedy, 0)[2] if stop else None
    out = run(
        graph_generator,
        SamplerSettings(max_new_tokens=NEW, stop_token_id=stop_id),
    )
    ids = out.token_ids.numpy()
    for row, prompt in enumerate(PROMPTS):
        tokens = new_tokens(out, row)
        assert tokens == uncached_greedy(model, prompt, NEW, stop_id)
        np.testing.assert_allclose(
            out.sequence_scores.numpy()[row],
            sequence_log_prob(model, prompt, tokens),
            atol=1e-4,
        )
        assert (ids[row, len(prompt) + len(tokens) :] == 0).all()
    if stop:
        assert len(new_tokens(out, 0)) == 3


def test_in_place_cache_writes_leave_later_calls_unchanged(
    graph_generator, greedy
):
    """A step writes each row's keys and values into the cache buffer in
    place: calls before, between and after other batches give the same
    tokens and scores."""
    settings = SamplerSettings(max_new_tokens=NEW)
    first = run(graph_generator, settings)
    run(graph_generator, settings, prompts=[[9, 8, 7], [1]])
    second = run(graph_generator, settings)
    assert rows(first) == rows(second) == rows(greedy)
    np.testing.assert_array_equal(
        first.token_scores.numpy(), second.token_scores.numpy()
    )


def test_quantized_layers_are_refused():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    backbone.transformer_layers[0]._feedforward_output_dense.quantize("int8")
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    with pytest.raises(ValueError, match="feedforward_output_dense.*float"):
        CausalLMGenerator(model)


@pytest.mark.parametrize(
    "knobs",
    [
        dict(top_k=1),
        dict(temperature=0.0),
        dict(temperature=1e-4),
        dict(top_p=1e-6),
    ],
    ids=["top_k=1", "temperature=0", "temperature->0", "top_p small"],
)
def test_degenerate_sampling_is_greedy(generator, greedy, knobs):
    out = run(
        generator,
        SamplerSettings("sample", max_new_tokens=NEW, seed=3, **knobs),
    )
    assert rows(out) == rows(greedy)


def test_seed_makes_sampling_reproducible(generator):
    def sample(seed):
        settings = SamplerSettings("sample", max_new_tokens=NEW, seed=seed)
        return rows(run(generator, settings))

    assert sample(1) == sample(1)
    draws = {str(sample(seed)) for seed in range(2, 7)}
    assert len(draws) == 5  # a near-uniform model: seeds must differ


def test_sampled_tokens_respect_top_k(generator, model):
    out = run(
        generator,
        SamplerSettings("sample", max_new_tokens=NEW, top_k=3, seed=5),
    )
    for row, prompt in enumerate(PROMPTS):
        ids = prompt + new_tokens(out, row)
        table = log_probs(model, ids)
        for position in range(len(prompt), len(ids)):
            top3 = np.argsort(-table[position - 1])[:3]
            assert ids[position] in top3


def test_batch_rows_equal_each_prompt_alone(generator):
    settings = [
        SamplerSettings(max_new_tokens=NEW),
        SamplerSettings("beam", max_new_tokens=NEW, num_beams=3),
        SamplerSettings("contrastive", max_new_tokens=NEW, top_k=4),
    ]
    for setting in settings:
        batch = rows(run(generator, setting, left=True))
        alone = [
            new_tokens(run(generator, setting, [prompt]), 0)
            for prompt in PROMPTS
        ]
        assert batch == alone, setting.strategy


def test_stop_token_ends_a_row(generator, greedy, model):
    stop = new_tokens(greedy, 0)[2]
    out = run(
        generator, SamplerSettings(max_new_tokens=NEW, stop_token_id=stop)
    )
    for row, prompt in enumerate(PROMPTS):
        assert new_tokens(out, row) == uncached_greedy(model, prompt, NEW, stop)
    assert new_tokens(out, 0)[-1] == stop and len(new_tokens(out, 0)) == 3


def test_beam_of_one_is_greedy(generator, greedy):
    out = run(generator, SamplerSettings("beam", max_new_tokens=NEW))
    assert rows(out) == rows(greedy)


def test_beams_are_sorted_and_scored_by_the_model(generator, model):
    out = run(
        generator,
        SamplerSettings(
            "beam", max_new_tokens=NEW, num_beams=4, return_all_beams=True
        ),
    )
    scores = out.sequence_scores.numpy()
    assert scores.shape == (len(PROMPTS), 4)
    assert (np.diff(scores, axis=1) <= 0).all()
    for row, prompt in enumerate(PROMPTS):
        beams = [new_tokens(out, row, beam) for beam in range(4)]
        assert len({str(b) for b in beams}) == 4
        for beam, tokens in enumerate(beams):
            np.testing.assert_allclose(
                scores[row, beam],
                sequence_log_prob(model, prompt, tokens),
                atol=1e-4,
            )


def test_beam_search_keeps_beams_that_stopped(generator, model):
    # The second most likely first token after [11, 12] as stop token: a
    # one-token beam that ends there outscores every longer beam.
    stop = int(np.argsort(-log_probs(model, PROMPTS[1])[-1])[1])
    out = run(
        generator,
        SamplerSettings(
            "beam",
            max_new_tokens=NEW,
            num_beams=4,
            return_all_beams=True,
            stop_token_id=stop,
        ),
    )
    for row, prompt in enumerate(PROMPTS):
        for beam in range(4):
            tokens = new_tokens(out, row, beam)
            assert stop not in tokens[:-1]
            assert len(tokens) == NEW or tokens[-1] == stop
            np.testing.assert_allclose(
                out.sequence_scores.numpy()[row, beam],
                sequence_log_prob(model, prompt, tokens),
                atol=1e-4,
            )
    assert [stop] in [new_tokens(out, 1, beam) for beam in range(4)]


def test_contrastive_without_penalty_is_greedy(generator, greedy):
    out = run(
        generator,
        SamplerSettings(
            "contrastive", max_new_tokens=NEW, top_k=4, penalty_alpha=0.0
        ),
    )
    assert rows(out) == rows(greedy)


def test_contrastive_penalty_changes_the_choice(generator, greedy):
    out = run(
        generator,
        SamplerSettings(
            "contrastive", max_new_tokens=NEW, top_k=4, penalty_alpha=0.9
        ),
    )
    assert rows(out) != rows(greedy)


def test_right_align_moves_left_padding():
    ids, mask = padded(PROMPTS, left=True)
    aligned, lengths = right_align(ids, mask)
    assert lengths.numpy().tolist() == [7, 2, 4]
    assert aligned.numpy().tolist() == padded(PROMPTS)[0].tolist()


def test_filter_logits_top_k_and_top_p():
    logits = tf.math.log([[0.5, 0.3, 0.15, 0.05]])
    kept = lambda k, p: np.isfinite(filter_logits(logits, k, p)).tolist()[0]  # noqa: E731
    assert kept(0, 1.0) == [True] * 4
    assert kept(2, 1.0) == [True, True, False, False]
    assert kept(0, 0.5) == [True, False, False, False]
    assert kept(0, 0.8) == [True, True, False, False]
    assert kept(0, 0.81) == [True, True, True, False]
    # top-p over the top-k set, renormalised: 0.5 / 0.8 > 0.6.
    assert kept(2, 0.6) == [True, False, False, False]


def test_generate_function_caches_a_generator(model):
    ids, mask = padded(PROMPTS)
    first = generate(model, ids, mask, SamplerSettings(max_new_tokens=2))
    assert first.token_ids.shape[0] == len(PROMPTS)


def test_prompt_checks(generator):
    ids, mask = padded(PROMPTS)
    mask[1] = False
    with pytest.raises(ValueError, match="without prompt tokens"):
        generator(ids, mask, SamplerSettings())
    with pytest.raises(ValueError, match="exceeds max_length"):
        generator(*padded(PROMPTS), SamplerSettings(max_new_tokens=MAX_LENGTH))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(strategy="nucleus"), "strategy='nucleus' is unknown"),
        (dict(max_new_tokens=0), "max_new_tokens=0"),
        (dict(temperature=-1.0), "temperature=-1.0"),
        (dict(top_p=0.0), "top_p=0.0"),
        (dict(top_k=-1), "top_k=-1"),
        (dict(strategy="contrastive", top_k=0), "top_k=0"),
        (dict(num_beams=0), "num_beams=0"),
        (dict(penalty_alpha=2.0), "penalty_alpha=2.0"),
        (dict(seed=1.5), "seed=1.5"),
        (dict(stop_token_id=-3), "stop_token_id=-3"),
    ],
)
def test_settings_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SamplerSettings(**kwargs)


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        SamplerSettings().top_k = 3  # type: ignore[misc]
