"""The whole pipeline on LocalDagRunner, as `textmill run` runs it."""

import csv
import dataclasses
import glob
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from textmill.config import PipelineConfig
from textmill.corpus.default_corpus import write_default_corpus
from textmill.pipelines.local import SUMMARY_FILE, run_local
from textmill.trainer.mean_nll import VAL_NLL

from .doc_commands import (
    DOCS_URL,
    run_readme_python,
    run_textmill,
    section_commands,
)
from .smoke_config import (
    assert_curve_ends_at_the_gate,
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow


def _tiny_config(tmp_path, corpus_pattern, **validation) -> PipelineConfig:
    return smoke_config(
        tmp_path,
        "distilgpt2",
        [corpus_pattern, str(tmp_path / "bad/*")],
        tokenizer={"vocab_size": 1024},
        train={
            "sequence_length": 64,
            "batch_size": 16,
            "train_steps": 240,
            "learning_rate": 3e-3,
            "warmup_steps": 24,
            "checkpoint_every": 120,
            "eval_steps": 4,
        },
        validation=validation,
        export={"parity_windows": 4},
    )


def _write_bad_inputs(directory):
    os.makedirs(directory)
    with open(os.path.join(directory, "broken.jsonl"), "w") as f:
        f.write('{"text": "A perfectly fine document about pipelines."}\n')
        f.write("{not json\n")
        f.write('{"body": "no text field"}\n')
    with open(os.path.join(directory, "latin1.txt"), "wb") as f:
        f.write("caf\xe9 cr\xe8me".encode("latin-1") * 10)
    open(os.path.join(directory, "empty.txt"), "w").close()
    with open(os.path.join(directory, "truncated.jsonl.gz"), "wb") as f:
        f.write(gzip.compress(b'{"text": "x"}\n' * 50)[:-20])


@pytest.fixture(scope="module")
def one_step_and_first_run(tmp_path_factory):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("pipeline")
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=120)
    _write_bad_inputs(str(tmp_path / "bad"))
    config = _tiny_config(tmp_path, corpus)
    one_step = run_one_step(config)
    return tmp_path, config, one_step, run_local(config)


@pytest.fixture(scope="module")
def first_run(one_step_and_first_run):
    tmp_path, config, _, summary = one_step_and_first_run
    return tmp_path, config, summary


def test_one_step_model_is_refused_against_the_baseline(
    one_step_and_first_run,
):
    tmp_path, _, summary, _ = one_step_and_first_run
    assert_refused_by_baseline(summary, "unigram")


def test_smoke_model_beats_the_baseline(first_run):
    _, _, summary = first_run
    assert summary["outcome"] == "pushed", summary.get("validation")
    row = summary["validation"]["metrics"]["perplexity"]
    assert row["verdict"] == "pass"
    assert row["candidate"] < row["baseline"] * 0.95
    assert row["interval_over_baseline"]["low"] > 0


def test_last_val_nll_is_the_validators_log_perplexity(first_run):
    """The training curve's last point and the gate measure the same thing:
    the same model on the same eval windows."""
    _, config, summary = first_run
    run = os.path.basename(summary["model_artifact"])  # the execution id
    history = os.path.join(
        config.pipeline_root, "Trainer", "model_run", run, "history.csv"
    )
    with open(history) as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last[VAL_NLL]) == summary["training"]["final_val_nll"]
    assert_curve_ends_at_the_gate(summary)


def test_run_pushes_savedmodel_and_tflite(first_run):
    tmp_path, config, summary = first_run
    assert "error" not in summary, summary.get("error")
    assert summary["pushed"], summary
    version_dir = summary["serving_model_dir"]
    assert os.path.dirname(version_dir) == str(
        tmp_path / "serving" / "distilgpt2"
    )
    assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
    files = {os.path.basename(p) for p in summary["tflite_files"]}
    # The scoring network, the on-device generation loop and the
    # LiteRT-LM bundles, each in float32 and int8.
    assert files == {
        "model_float32.tflite",
        "model_int8.tflite",
        "generate_float32.tflite",
        "generate_int8.tflite",
        "model_float32.litertlm",
        "model_int8.litertlm",
    }
    with open(os.path.join(version_dir, "tflite", "metadata.json")) as f:
        metadata = json.load(f)
    float32 = metadata["variants"]["float32"]["parity"]
    assert float32["max_abs_logit_diff"] < 1e-3
    assert float32["top1_agreement"] > 0.99
    # The LiteRT-LM runtime's greedy text is the SavedModel's, on prompts
    # of one token to several prefill chunks.
    litert_lm = metadata["litert_lm"]
    assert max(litert_lm["parity_prompt_tokens"]) > litert_lm["prefill_length"]
    parity = litert_lm["variants"]["float32"]["parity"]
    assert parity["identical"] == parity["prompts"] == 5
    on_disk = json.load(open(os.path.join(config.work_dir, SUMMARY_FILE)))
    assert on_disk["pushed"] and on_disk["validation"]["blessed"]


def test_ingest_counts_bad_input_by_reason(first_run):
    _, _, summary = first_run
    skipped = summary["ingest"]["skipped"]
    for reason in (
        "malformed_json",
        "missing_field",
        "undecodable_utf8",
        "empty_file",
        "corrupt_gzip",
    ):
        assert skipped.get(reason, 0) >= 1, (reason, skipped)


def test_pushed_model_serves_raw_strings(first_run):
    _, _, summary = first_run
    model = tf.saved_model.load(summary["serving_model_dir"])
    scores = model.signatures["serving_default"](
        text=tf.constant(["Return the path of the module.", "x"])
    )
    assert scores["next_token_logits"].shape[0] == 2
    assert np.all(scores["log_likelihood"].numpy() < 0)
    assert np.all(scores["num_tokens"].numpy() >= 1)
    out = model.signatures["generate"](
        prompt=tf.constant(["Return the", "A much longer prompt about files"]),
        max_new_tokens=tf.constant(5),
    )
    assert out["completion"].shape == (2,)


def test_readme_snippet_runs_as_written(first_run):
    """The README's Python snippet, in a fresh process, prints what the
    pushed model's `generate` gives here."""
    _, _, summary = first_run
    printed = run_readme_python(summary["serving_model_dir"])
    model = tf.saved_model.load(summary["serving_model_dir"])
    out = model.signatures["generate"](
        prompt=tf.constant(["The module"]), max_new_tokens=tf.constant(20)
    )
    assert printed == out["completion"].numpy()[0].decode() + "\n"


def test_serving_docs_client_commands_run_as_written(first_run):
    from textmill.serving.model_repository import ModelRepository
    from textmill.serving.model_server import ModelServer

    tmp_path, _, _ = first_run
    commands = section_commands("docs/serving.md", "## Client", "textmill")
    assert len(commands) >= 3, commands
    with ModelServer(
        ModelRepository(str(tmp_path / "serving")), port=0
    ) as server:
        for command in commands:
            printed = run_textmill(command, **{DOCS_URL: server.url})
            if "--json" in command:
                assert len(json.loads(printed)["completions"]) == 1, printed


def test_summary_times_components_and_reports_the_cache(first_run):
    _, _, summary = first_run
    components = summary["components"]
    # The smoke run reused the 1-step run's ingest and Transform.
    assert components["TextExampleGen"]["cached"] is True
    assert components["Transform"]["cached"] is True
    assert components["Trainer"]["cached"] is False
    assert all(c["seconds"] >= 0 for c in components.values())
    assert summary["wall_seconds"] >= components["Trainer"]["seconds"]
    training = summary["training"]
    assert training["final_val_nll"] is not None
    assert os.path.exists(training["loss_plot"])


def test_trained_model_is_a_preset_to_fine_tune_from(first_run):
    from textmill.tokenization.bpe_files import HF_VOCAB_FILENAME
    from textmill.trainer.models.gpt2 import build_gpt2_causal_lm

    _, _, summary = first_run
    preset_dir = summary["preset_dir"]
    with open(os.path.join(preset_dir, HF_VOCAB_FILENAME)) as f:
        vocabulary_size = len(json.load(f))
    model = build_gpt2_causal_lm("tiny", vocabulary_size, init_from=preset_dir)
    served = tf.saved_model.load(summary["serving_model_dir"])
    logits_from_ids = served.signatures["logits_from_ids"]
    length = logits_from_ids.structured_input_signature[1]["token_ids"].shape[1]
    ids = (np.arange(length, dtype=np.int32) * 7 % vocabulary_size)[None]
    expected = logits_from_ids(token_ids=tf.constant(ids))["logits"].numpy()
    got = model({"token_ids": ids, "padding_mask": np.ones_like(ids, bool)})
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4)


def test_rerun_with_same_inputs_is_cached(first_run):
    tmp_path, config, summary = first_run
    versions = os.listdir(tmp_path / "serving" / "distilgpt2")
    again = run_local(config)
    assert "error" not in again
    assert os.listdir(tmp_path / "serving" / "distilgpt2") == versions
    assert again["model_artifact"] == summary["model_artifact"]


def test_model_over_threshold_is_not_pushed(first_run):
    tmp_path, config, _ = first_run
    strict = _tiny_config(
        tmp_path, config.ingest.input_patterns[0], max_perplexity=1.5
    )
    versions = os.listdir(tmp_path / "serving" / "distilgpt2")
    summary = run_local(strict)
    assert "error" not in summary
    assert not summary["pushed"]
    assert "above the threshold" in summary["not_pushed_reason"]
    assert os.listdir(tmp_path / "serving" / "distilgpt2") == versions


def _history_epochs(checkpoint_root):
    """Epoch numbers in the order the CSVLogger wrote them (a resumed run
    appends to the same file)."""
    epochs = []
    for path in glob.glob(os.path.join(checkpoint_root, "*", "history.csv")):
        for line in open(path).read().splitlines()[1:]:
            epochs.append(int(line.split(",")[0]))
    return epochs


def test_training_resumes_after_kill(first_run, tmp_path):
    _, config, _ = first_run
    train = dict(
        dataclasses.asdict(config.train), train_steps=40, checkpoint_every=5
    )
    custom = {
        "family": config.family,
        "train": train,
        "checkpoint_root": str(tmp_path / "checkpoints"),
    }
    command = [
        sys.executable,
        os.path.join(os.path.dirname(__file__), "trainer_worker.py"),
        config.pipeline_root,
        str(tmp_path / "out"),
        json.dumps(custom),
    ]
    worker = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and worker.poll() is None:
            if len(_history_epochs(str(tmp_path / "checkpoints"))) >= 2:
                break
            time.sleep(0.5)
    finally:
        worker.kill()
        worker.wait()
    before = _history_epochs(str(tmp_path / "checkpoints"))
    assert 2 <= len(before) < 8, before

    resumed = subprocess.run(
        command,
        timeout=600,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    epochs = _history_epochs(str(tmp_path / "checkpoints"))
    # The restarted run went on from the last checkpoint instead of starting
    # over (epoch 0 appears once), and finished all 8 epochs.
    assert epochs[: len(before)] == before
    assert epochs.count(0) == 1, epochs
    assert set(epochs) == set(range(8)), epochs
    assert epochs[-1] == 7
    assert os.path.exists(
        tmp_path / "out" / "model" / "Format-Serving" / "saved_model.pb"
    )


def test_two_workers_train_and_the_chief_exports(first_run, tmp_path):
    """run_fn on a two-worker cluster (TF_CONFIG, MultiWorkerMirrored):
    both workers train, only the chief exports, and its model serves."""
    import portpicker

    _, config, _ = first_run
    custom = {
        "family": config.family,
        "train": dict(
            dataclasses.asdict(config.train), train_steps=6, checkpoint_every=3
        ),
        "checkpoint_root": str(tmp_path / "checkpoints"),
    }
    cluster = {
        "worker": [f"localhost:{portpicker.pick_unused_port()}" for _ in "ab"]
    }
    workers = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            CUDA_VISIBLE_DEVICES="",
        )
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(
                        os.path.dirname(__file__), "trainer_worker.py"
                    ),
                    config.pipeline_root,
                    str(tmp_path / f"worker{index}"),
                    json.dumps(custom),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        logs = [worker.communicate(timeout=600)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, log in zip(workers, logs, strict=True):
        assert worker.returncode == 0, log[-3000:]
    # (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.)
    assert "AllReduceStrategy, 2 replica(s)" in logs[0], logs[0][-3000:]
    # The multi-worker loop's checkpoints, written by the chief.
    (run_dir,) = glob.glob(str(tmp_path / "checkpoints" / "*"))
    assert glob.glob(os.path.join(run_dir, "loop", "ckpt-2.index"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        assert len(f.read().splitlines()) == 3  # header and 2 epochs
    exported = tmp_path / "worker0" / "model" / "Format-Serving"
    assert not (tmp_path / "worker1" / "model").exists()
    model = tf.saved_model.load(str(exported))
    out = model.signatures["generate"](
        prompt=tf.constant(["Return the"]),
        max_new_tokens=tf.constant(4, tf.int32),
    )
    assert out["completion"].shape == (1,)
