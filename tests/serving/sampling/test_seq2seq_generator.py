"""Cached encoder-decoder decoding against uncached calls of the model."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from textmill.serving.sampling.seq2seq_generator import Seq2SeqGenerator

SOURCES = [[5, 6, 7, 8, 9, 10, 11], [11, 12], [3, 40, 41, 42]]
START, STOP = 1, 2
NEW = 8
MAX_LENGTH = 32


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=60,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
        max_sequence_length=MAX_LENGTH,
    )
    return keras_hub.models.BartSeq2SeqLM(backbone, preprocessor=None)


def log_probs(model, source, decoder) -> np.ndarray:
    """Full forward pass (no cache): log-probs `[len(decoder), vocab]`."""
    source = np.asarray(source, np.int32)[None]
    decoder = np.asarray(decoder, np.int32)[None]
    logits = model(
        {
            "encoder_token_ids": source,
            "encoder_padding_mask": np.ones_like(source),
            "decoder_token_ids": decoder,
            "decoder_padding_mask": np.ones_like(decoder),
        }
    )
    logits = np.asarray(logits[0], np.float64)
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def uncached_greedy(model, source, stop) -> list[int]:
    ids = [START]
    for _ in range(NEW):
        ids.append(int(log_probs(model, source, ids)[-1].argmax()))
        if ids[-1] == stop:
            break
    return ids[1:]


def padded(sources):
    width = max(map(len, sources))
    ids = np.zeros([len(sources), width], np.int32)
    for row, source in enumerate(sources):
        ids[row, : len(source)] = source
    lengths = np.array([len(s) for s in sources], np.int32)
    return tf.constant(ids), tf.constant(lengths)


def new_tokens(out, row: int, beam: int | None = None) -> list[int]:
    ids, mask = out.token_ids.numpy()[row], out.generated_mask.numpy()[row]
    if beam is not None:
        ids, mask = ids[beam], mask[beam]
    return ids[mask].tolist()


def test_greedy_matches_uncached_calls_for_every_row_of_a_batch(model):
    generator = Seq2SeqGenerator(model, START, MAX_LENGTH)
    # A stop token that one row reaches, so rows end apart.
    stops = {uncached_greedy(model, s, -1)[3] for s in SOURCES}
    stop = sorted(stops)[0]
    out = generator.greedy(
        *padded(SOURCES), tf.constant(NEW), tf.constant(stop)
    )
    for row, source in enumerate(SOURCES):
        expected = uncached_greedy(model, source, stop)
        assert new_tokens(out, row) == expected
        table = log_probs(model, source, [START, *expected])
        scores = out.token_scores.numpy()[row][out.generated_mask.numpy()[row]]
        np.testing.assert_allclose(
            scores,
            [table[i, token] for i, token in enumerate(expected)],
            atol=1e-4,
        )


def test_beam_and_top_k_sampling_reduce_to_greedy(model):
    generator = Seq2SeqGenerator(model, START, MAX_LENGTH)
    ids, lengths = padded(SOURCES)
    new, stop = tf.constant(NEW), tf.constant(-1)
    greedy = generator.greedy(ids, lengths, new, stop)
    one_beam = generator.beam(ids, lengths, new, stop, tf.constant(1))
    top_1 = generator.sample(
        ids,
        lengths,
        new,
        stop,
        temperature=tf.constant(1.0),
        top_k=tf.constant(1),
        top_p=tf.constant(1.0),
        seed=tf.constant(7, tf.int64),
    )
    for row in range(len(SOURCES)):
        assert new_tokens(one_beam, row, beam=0) == new_tokens(greedy, row)
        assert new_tokens(top_1, row) == new_tokens(greedy, row)


def test_beams_are_sorted_and_scored_by_the_model(model):
    generator = Seq2SeqGenerator(model, START, MAX_LENGTH)
    ids, lengths = padded(SOURCES[:2])
    out = generator.beam(ids, lengths, tf.constant(4), tf.constant(-1), 3)
    scores = out.sequence_scores.numpy()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    for row, source in enumerate(SOURCES[:2]):
        for beam in range(3):
            tokens = new_tokens(out, row, beam)
            table = log_probs(model, source, [START, *tokens])
            expected = sum(table[i, t] for i, t in enumerate(tokens))
            assert scores[row, beam] == pytest.approx(expected, abs=1e-4)
