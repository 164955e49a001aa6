"""SentencePairGen's executor through the real Beam pipeline."""

import glob
import itertools
import json
import os
import random

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from textmill.components.sentence_pairs import REPORT_FILENAME, spec
from textmill.components.sentence_pairs.executor import Executor

WORDS = (
    "river stone lantern orchard harbor meadow signal copper violet ember "
    "window garden market thunder pepper ribbon canyon silver marble fable"
).split()
LONG_SENTENCE = "An endless sentence " + "goes on " * 200 + "forever."


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def corpus(split: str) -> list[tuple[str, str]]:
    """(doc_id, text): regular documents plus one of each drop reason."""
    rng = random.Random(split)
    documents = [
        (
            f"{split}-{i:03d}",
            " ".join(sentence(rng) for _ in range(rng.randint(3, 14))),
        )
        for i in range(40 if split == "train" else 12)
    ]
    documents += [
        (f"{split}-single", "Only one sentence here."),
        (f"{split}-empty", "   "),
        (
            f"{split}-long",
            f"First one is fine. {LONG_SENTENCE} Then one more. And a last.",
        ),
    ]
    return documents


def write_examples(root) -> standard_artifacts.Examples:
    """An Examples artifact laid out as TextExampleGen writes it."""
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split in ("train", "eval"):
        directory = os.path.join(examples.uri, f"Split-{split}")
        os.makedirs(directory)
        path = os.path.join(directory, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for doc_id, text in corpus(split):
                feature = {
                    name: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[value.encode()])
                    )
                    for name, value in (
                        ("text", text),
                        ("doc_id", doc_id),
                        ("source", "test"),
                    )
                }
                writer.write(
                    tf.train.Example(
                        features=tf.train.Features(feature=feature)
                    ).SerializeToString()
                )
    return examples


def run_executor(tmp_path, name, beam_args=(), **params):
    """Runs the executor; returns the output artifact and the report."""
    examples = write_examples(tmp_path / name)
    pairs = standard_artifacts.Examples()
    pairs.uri = str(tmp_path / name / "pairs")
    properties = {
        spec.TARGET_LENGTH_KEY: 40,
        spec.LENGTH_UNIT_KEY: "tokens",
        spec.SHORT_SEQ_PROB_KEY: 0.1,
        spec.MAX_SENTENCE_CHARS_KEY: 500,
        spec.SEED_KEY: 7,
        **params,
    }
    context = Executor.Context(
        tmp_dir=str(tmp_path / name / "tmp"),
        make_beam_pipeline_fn=lambda: beam.Pipeline(argv=list(beam_args)),
    )
    Executor(context).Do(
        {spec.EXAMPLES_KEY: [examples]},
        {spec.SENTENCE_PAIRS_KEY: [pairs]},
        properties,
    )
    with open(os.path.join(pairs.uri, REPORT_FILENAME)) as f:
        return pairs, json.load(f)


def read_pairs(pairs, split: str) -> list[tuple[str, str, int]]:
    """The split's pairs, sorted (file order is the runner's business)."""
    return sorted(pairs_in_file_order(pairs, split))


def pairs_in_file_order(pairs, split: str) -> list[tuple[str, str, int]]:
    """The split's pairs as a reader streams them: file by file."""
    rows = []
    pattern = os.path.join(pairs.uri, f"Split-{split}", "*.gz")
    for path in sorted(glob.glob(pattern)):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            rows.append(
                (
                    feature["sentence_a"].bytes_list.value[0].decode(),
                    feature["sentence_b"].bytes_list.value[0].decode(),
                    feature["is_next"].int64_list.value[0],
                )
            )
    return rows


@pytest.fixture(scope="module")
def single_worker(tmp_path_factory):
    return run_executor(tmp_path_factory.mktemp("run"), "one")


def test_pairs_are_balanced_and_labelled_correctly(single_worker):
    pairs, report = single_worker
    assert artifact_utils.decode_split_names(pairs.split_names) == [
        "train",
        "eval",
    ]
    texts = {doc_id: text for doc_id, text in corpus("train")}
    rows = read_pairs(pairs, "train")
    assert len(rows) == report["splits"]["train"]["pairs"] > 60
    fraction = sum(label for _, _, label in rows) / len(rows)
    assert 0.4 < fraction < 0.6
    for sentence_a, sentence_b, label in rows:
        owners_a = {d for d, t in texts.items() if sentence_a in t}
        owners_b = {d for d, t in texts.items() if sentence_b in t}
        assert owners_a and owners_b
        if label:
            # B is the text right after A, in the same document.
            assert any(
                f"{sentence_a} {sentence_b}" in texts[d] for d in owners_a
            )
        else:
            assert not owners_a & owners_b


def test_labels_are_mixed_in_file_order(single_worker):
    """A reader streaming the split sees both labels throughout, not every
    true pair and then every random-next one (which a training shuffle
    buffer smaller than the split cannot mix)."""
    pairs, _ = single_worker
    labels = [label for _, _, label in pairs_in_file_order(pairs, "train")]
    runs = [len(list(run)) for _, run in itertools.groupby(labels)]
    assert len(labels) > 60
    assert max(runs) <= 8, runs
    assert len(runs) >= len(labels) // 4, runs
    for half in (labels[: len(labels) // 2], labels[len(labels) // 2 :]):
        assert 0.3 < sum(half) / len(half) < 0.7


def test_report_counts_drops_by_reason(single_worker):
    pairs, report = single_worker
    train = report["splits"]["train"]
    assert train["documents_read"] == 43
    assert train["documents_paired"] == 41
    assert train["is_next"] + train["not_next"] == train["pairs"]
    assert train["dropped"] == {
        "empty_document": 1,
        "single_sentence_document": 1,
        "sentence_too_long": 1,
        "isolated_sentence": 1,
        "no_sentence_pair": 0,
        "no_other_document": 0,
    }
    assert report["dropped_units"]["sentence_too_long"] == "sentences"
    assert report["config"]["seed"] == 7
    assert pairs.get_int_custom_property("pairs_eval") == len(
        read_pairs(pairs, "eval")
    )
    assert all(
        LONG_SENTENCE not in a + b for a, b, _ in read_pairs(pairs, "train")
    )


def test_same_seed_same_pairs_other_seed_other_pairs(tmp_path, single_worker):
    again, _ = run_executor(tmp_path, "again")
    other, _ = run_executor(tmp_path, "other", **{spec.SEED_KEY: 8})
    for split in ("train", "eval"):
        assert read_pairs(again, split) == read_pairs(single_worker[0], split)
    assert read_pairs(other, "train") != read_pairs(single_worker[0], "train")


@pytest.mark.slow
def test_same_pairs_with_two_worker_processes(tmp_path, single_worker):
    parallel, report = run_executor(
        tmp_path,
        "two",
        beam_args=[
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
    )
    for split in ("train", "eval"):
        assert read_pairs(parallel, split) == read_pairs(
            single_worker[0], split
        )
    assert report["splits"] == single_worker[1]["splits"]


def test_a_lone_document_makes_no_negative(tmp_path):
    examples = write_examples(tmp_path / "lone")
    directory = os.path.join(examples.uri, "Split-eval")
    for path in glob.glob(os.path.join(directory, "*")):
        os.remove(path)
    with tf.io.TFRecordWriter(
        os.path.join(directory, "data_tfrecord-00000-of-00001.gz"), "GZIP"
    ) as writer:
        text = " ".join(sentence(random.Random(i)) for i in range(12))
        writer.write(
            tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "text": tf.train.Feature(
                            bytes_list=tf.train.BytesList(value=[text.encode()])
                        )
                    }
                )
            ).SerializeToString()
        )
    pairs = standard_artifacts.Examples()
    pairs.uri = str(tmp_path / "lone" / "pairs")
    context = Executor.Context(
        tmp_dir=str(tmp_path / "tmp"), make_beam_pipeline_fn=beam.Pipeline
    )
    Executor(context).Do(
        {spec.EXAMPLES_KEY: [examples]},
        {spec.SENTENCE_PAIRS_KEY: [pairs]},
        {
            spec.TARGET_LENGTH_KEY: 30,
            spec.LENGTH_UNIT_KEY: "chars",
            spec.SHORT_SEQ_PROB_KEY: 0.0,
            spec.MAX_SENTENCE_CHARS_KEY: 500,
            spec.SEED_KEY: 0,
        },
    )
    with open(os.path.join(pairs.uri, REPORT_FILENAME)) as f:
        evaluation = json.load(f)["splits"]["eval"]
    rows = read_pairs(pairs, "eval")
    assert rows and all(label == 1 for _, _, label in rows)
    assert evaluation["dropped"]["no_other_document"] > 0
    assert evaluation["not_next"] == 0
