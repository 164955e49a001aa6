import os

import pytest

from textmill.components.serving_pusher.executor import (
    existing_versions,
    next_version,
    push_version,
)


def _saved_model(root):
    os.makedirs(os.path.join(root, "variables"))
    for name in ("saved_model.pb", "variables/variables.index"):
        with open(os.path.join(root, name), "w") as f:
            f.write(name)
    return root


def test_push_is_one_rename_and_versions_grow(tmp_path):
    model = _saved_model(str(tmp_path / "model"))
    tflite = tmp_path / "tflite"
    tflite.mkdir()
    (tflite / "model_float32.tflite").write_bytes(b"TFL3")
    (tflite / "metadata.json").write_text("{}")
    root = str(tmp_path / "serving" / "lm")
    os.makedirs(root)

    v1 = next_version(root)
    final = push_version(model, root, v1, str(tflite))
    assert final == os.path.join(root, str(v1))
    assert sorted(os.listdir(root)) == [str(v1)]  # no staging left behind
    assert os.path.exists(os.path.join(final, "saved_model.pb"))
    assert os.path.exists(os.path.join(final, "variables/variables.index"))
    assert os.path.exists(os.path.join(final, "tflite/model_float32.tflite"))

    v2 = next_version(root)
    assert v2 > v1
    push_version(model, root, v2)
    assert existing_versions(root) == [v1, v2]
    with pytest.raises(FileExistsError):
        push_version(model, root, v2)


def test_staging_directory_is_hidden_from_version_listing(tmp_path):
    root = tmp_path / "lm"
    (root / ".incoming-5-abc").mkdir(parents=True)
    (root / "3").mkdir()
    assert existing_versions(str(root)) == [3]


def test_same_model_is_found_instead_of_pushed_twice(tmp_path):
    from textmill.components.serving_pusher.executor import serving_version_of

    model = _saved_model(str(tmp_path / "model"))
    root = str(tmp_path / "lm")
    os.makedirs(root)
    assert serving_version_of(root, "pipeline/Trainer/model/7") is None
    final = push_version(model, root, 5, source="pipeline/Trainer/model/7")
    assert serving_version_of(root, "pipeline/Trainer/model/7") == final
    assert serving_version_of(root, "pipeline/Trainer/model/8") is None
