"""The translation family through the whole local pipeline, on sentence
pairs from gettext catalogs the test writes, and served by `textmill
serve`."""

import itertools
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.translations import write_translation_corpus
from textmill.pipelines.local import run_local
from textmill.serving.serve_process import start_serve
from textmill.serving.signatures import (
    TRANSLATE,
    TRANSLATE_BEAM,
    TRANSLATE_SAMPLE,
)

from .smoke_config import (
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow

# English -> German UI phrases: every pair is a verb phrase and an object,
# so a small model learns the word-for-word mapping in a few hundred steps.
VERBS = {
    "Could not open": "Konnte nicht öffnen:",
    "Unable to save": "Speichern nicht möglich:",
    "Failed to delete": "Löschen fehlgeschlagen:",
    "Cannot read": "Lesen nicht möglich:",
    "Could not copy": "Kopieren fehlgeschlagen:",
    "Unable to find": "Nicht gefunden:",
}
OBJECTS = {
    "the file": "die Datei",
    "the folder": "der Ordner",
    "the archive": "das Archiv",
    "the document": "das Dokument",
    "the package": "das Paket",
    "the database": "die Datenbank",
    "the image": "das Bild",
    "the message": "die Nachricht",
}
PLACES = {
    "in your home directory": "in Ihrem Persönlichen Ordner",
    "on the server": "auf dem Server",
    "from the network": "aus dem Netzwerk",
    "on the disk": "auf der Festplatte",
    "in the trash": "im Papierkorb",
}
SOURCE = "Could not open the file on the server"


def _pairs() -> list[tuple[str, str]]:
    return [
        (
            f"{verb} {obj} {place}",
            f"{VERBS[verb]} {OBJECTS[obj]} " f"{PLACES[place]}",
        )
        for verb, obj, place in itertools.product(VERBS, OBJECTS, PLACES)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, write_catalog):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("translation")
    locale = str(tmp_path / "locale")
    pairs = _pairs()
    # Two catalogs, as two programs would install them.
    write_catalog(locale, "de", "files", pairs[::2])
    write_catalog(locale, "de", "tools", pairs[1::2])
    corpus, report = write_translation_corpus(
        "de", str(tmp_path / "corpus"), locale_dir=locale
    )
    assert report.pairs == len(pairs)
    config = smoke_config(
        tmp_path,
        "translation",
        [corpus],
        ingest={"min_chars": 1},
        tokenizer={"vocab_size": 400},
        train={
            "sequence_length": 32,
            "batch_size": 16,
            "train_steps": 120,
            "learning_rate": 3e-3,
            "warmup_steps": 20,
            "checkpoint_every": 60,
        },
        validation={"max_eval_windows": 16},
        export={"tflite_variants": ("float32",), "parity_windows": 3},
    )
    one_step = run_one_step(config)
    return tmp_path, one_step, run_local(config)


def test_one_step_translator_is_refused_against_the_baseline(runs):
    _, one_step, _ = runs
    assert_refused_by_baseline(one_step, "copy-the-source")


def test_translation_run_pushes_a_translator(runs):
    _, _, summary = runs
    assert "error" not in summary, summary.get("error")
    assert summary["pushed"], summary
    validation = summary["validation"]
    candidate, baseline = validation["candidate"], validation["baseline"]
    assert candidate["examples"] == baseline["examples"] == 16
    for name in ("chrf", "corpus_chrf", "bleu"):
        # sacrebleu's scores / 100, up to rounding.
        for value in (candidate[name], baseline[name]):
            assert 0 <= value <= 1 + 1e-9, name
    assert candidate["chrf"] > baseline["chrf"]
    parity = summary["tflite"]["variants"]["float32"]["parity"]
    assert parity["inputs"] == 3 and parity["max_abs_logit_diff"] < 1e-3
    assert [os.path.basename(p) for p in summary["tflite_files"]] == [
        "model_float32.tflite"
    ]


def test_translate_signatures_answer_raw_strings(runs):
    _, _, summary = runs
    model = tf.saved_model.load(summary["serving_model_dir"])
    new_tokens = tf.constant(24, tf.int32)
    greedy = model.signatures[TRANSLATE](
        text=tf.constant([SOURCE, "  " + SOURCE + "\n"]),
        max_new_tokens=new_tokens,
    )
    first, second = greedy["completion"].numpy()
    assert first == second  # stripped like the training data
    translation = first.decode()
    # The learned words of this pair, not a copy of the source.
    assert translation.startswith(VERBS["Could not open"]), translation
    assert "Server" in translation and "open" not in translation
    beam = model.signatures[TRANSLATE_BEAM](
        text=tf.constant([SOURCE]),
        max_new_tokens=new_tokens,
        num_beams=tf.constant(3),
    )
    assert beam["beam_completions"].shape == (1, 3)
    # Best beam first; with a model this sure of itself, it is the greedy
    # translation.
    beam_scores = beam["beam_scores"].numpy()[0]
    assert list(beam_scores) == sorted(beam_scores, reverse=True)
    assert beam["completion"].numpy()[0] == first
    top_1 = model.signatures[TRANSLATE_SAMPLE](
        text=tf.constant([SOURCE]),
        max_new_tokens=new_tokens,
        temperature=tf.constant(1.0),
        top_k=tf.constant(1),
        top_p=tf.constant(0.9),
        seed=tf.constant(1, tf.int64),
    )
    assert top_1["completion"].numpy()[0] == first


def test_textmill_serve_translates_through_generate(runs):
    tmp_path, _, summary = runs
    model = tf.saved_model.load(summary["serving_model_dir"])
    local = (
        model.signatures[TRANSLATE](
            text=tf.constant([SOURCE]), max_new_tokens=tf.constant(24)
        )["completion"]
        .numpy()[0]
        .decode()
    )
    process, url = start_serve(str(tmp_path / "serving"), 120)
    assert url.startswith("http://127.0.0.1:"), url
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "textmill.pipelines.cli",
                "generate",
                "--url",
                url,
                "--model",
                "translation",
                "--signature-name",
                TRANSLATE,
                "--max-new-tokens",
                "24",
                "--json",
                SOURCE,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout) == {"completions": [local]}
    finally:
        process.terminate()
        process.wait(60)
