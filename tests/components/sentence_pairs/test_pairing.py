"""Segment building, donor choice and drop rules, without Beam."""

import collections

import pytest

from textmill.components.sentence_pairs import SentencePairGen, pairing


def numbered(count: int, words: int = 5) -> list[str]:
    return [f"S{i} " + "word " * (words - 2) + "end." for i in range(count)]


def runs_of(sentences):
    runs, dropped = pairing.sentence_runs(sentences, pairing.TOKENS, 1000)
    assert not dropped
    return runs


def indices(segment: str) -> list[int]:
    return [int(word[1:]) for word in segment.split() if word[0] == "S"]


def test_lengths_in_chars_and_approximate_tokens():
    assert pairing.sentence_length("Hello, world!", pairing.CHARS) == 13
    assert pairing.sentence_length("Hello, world!", pairing.TOKENS) == 4


@pytest.mark.parametrize(
    "sentences, max_chars, kept, dropped",
    [
        ([], 100, [], {"empty_document": 1}),
        (["One."], 100, [], {"single_sentence_document": 1}),
        (["One.", "Two."], 100, [["One.", "Two."]], {}),
        (
            ["One.", "x" * 20, "Two.", "Three."],
            10,
            [["Two.", "Three."]],
            {"sentence_too_long": 1, "isolated_sentence": 1},
        ),
        (
            ["One.", "x" * 20, "Two."],
            10,
            [],
            {
                "sentence_too_long": 1,
                "isolated_sentence": 2,
                "no_sentence_pair": 1,
            },
        ),
    ],
)
def test_sentence_runs(sentences, max_chars, kept, dropped):
    runs, counts = pairing.sentence_runs(sentences, pairing.CHARS, max_chars)
    assert [[s for s, _ in run] for run in runs] == kept
    assert dict(counts) == dropped


def test_plan_uses_every_sentence_once_in_order():
    runs = runs_of(numbered(30))
    for seed in range(50):
        rng = pairing.document_rng(seed, "doc")
        planned = pairing.plan_pairs(runs, rng, 12, 0.2)
        seen = []
        for item in planned:
            a = indices(item.sentence_a)
            assert a == list(range(a[0], a[-1] + 1))
            seen.extend(a)
            if isinstance(item, pairing.Pair):
                b = indices(item.sentence_b)
                assert item.is_next == 1 and b[0] == a[-1] + 1
                seen.extend(b)
        # Negatives put the rest of their chunk back: nothing is lost.
        assert seen == list(range(30))


def test_plan_is_balanced_and_respects_target_length():
    runs = runs_of(numbered(40))
    labels = collections.Counter()
    for seed in range(200):
        rng = pairing.document_rng(seed, "doc")
        for item in pairing.plan_pairs(runs, rng, 20, 0.0):
            labels[type(item)] += 1
            if isinstance(item, pairing.NegativeRequest):
                a_length = len(indices(item.sentence_a)) * 6  # 6 tokens each
                assert item.target_b_length == max(1, 20 - a_length)
            else:
                total = indices(item.sentence_a) + indices(item.sentence_b)
                # The chunk stops at the first sentence that reaches 20,
                # or takes one more rather than strand the last sentence.
                assert len(total) <= 4 or total[-1] == 39
    fraction = labels[pairing.Pair] / sum(labels.values())
    assert 0.45 < fraction < 0.55


def test_short_sequences_appear_with_their_probability():
    runs = runs_of(numbered(40, words=1))
    sizes = collections.Counter()
    for seed in range(100):
        rng = pairing.document_rng(seed, "doc")
        for item in pairing.plan_pairs(runs, rng, 10, 0.5):
            if isinstance(item, pairing.Pair):
                sizes[
                    len(indices(item.sentence_a + " " + item.sentence_b))
                ] += 1
    assert sum(n for size, n in sizes.items() if size < 10) > 0.3 * sum(
        sizes.values()
    )


def test_randomness_depends_on_seed_and_doc_id_only():
    runs = runs_of(numbered(20))
    first = pairing.plan_pairs(runs, pairing.document_rng(1, "a"), 10, 0.1)
    again = pairing.plan_pairs(runs, pairing.document_rng(1, "a"), 10, 0.1)
    other = pairing.plan_pairs(runs, pairing.document_rng(1, "b"), 10, 0.1)
    assert first == again != other
    assert pairing.document_key(1, "a") == pairing.document_key(1, "a")
    assert pairing.document_key(1, "a") != pairing.document_key(2, "a")


def test_donor_is_never_self_and_roughly_uniform():
    keys = sorted(pairing.document_key(0, f"d{i}") for i in range(5))
    chosen = collections.Counter()
    for own in keys:
        for draw in range(400):
            donor = pairing.choose_donor(keys, own, draw * 7919)
            assert donor != own and donor in keys
            chosen[donor] += 1
    assert min(chosen.values()) > 0.8 * max(chosen.values())


def test_donor_segment_starts_anywhere_and_reaches_the_target():
    runs = runs_of(numbered(6))
    for draw in range(12):
        segment = indices(pairing.donor_segment(runs, draw, 8))
        start = draw % 6
        assert segment[0] == start
        assert segment == list(range(start, segment[-1] + 1))
        # Two 6-token sentences reach 8, unless the run ends first; a
        # single last sentence is never left behind.
        assert segment[-1] == min(start + 1, 5) or segment[-1] == 5


@pytest.mark.parametrize(
    "argument, value",
    [
        ("target_length", 1),
        ("target_length", 12.5),
        ("length_unit", "words"),
        ("short_seq_prob", 1.5),
        ("max_sentence_chars", 0),
        ("seed", -1),
    ],
)
def test_component_rejects_bad_arguments(argument, value):
    from tfx.types import channel_utils, standard_artifacts

    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    with pytest.raises(ValueError, match=argument):
        SentencePairGen(examples=examples, **{argument: value})


def test_component_declares_its_output():
    from tfx.types import channel_utils, standard_artifacts

    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    component = SentencePairGen(examples=examples, target_length=61)
    assert component.outputs["sentence_pairs"].type_name == "Examples"
    assert component.exec_properties["target_length"] == 61
