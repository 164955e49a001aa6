"""Writing keras-hub task presets for tasks without a preprocessor."""

import json
import os

import keras


def save_task_preset(task, preset_dir: str, max_shard_size: float = 10) -> None:
    """Saves a task without a preprocessor as a keras-hub preset.

    keras-hub 0.25's `Task.save_to_preset` fails when `preprocessor` is
    `None` (after writing everything else); this writes the same files:
    `task.json`, `task.weights.h5` (the head) and the backbone's preset.

    Args:
        task: a `keras_hub.models.Task` whose `preprocessor` is `None`.
        preset_dir: directory to write.
        max_shard_size: largest backbone weight file, in GB.
    """
    os.makedirs(preset_dir, exist_ok=True)
    config = keras.saving.serialize_keras_object(task)
    _drop_keys(config, ("compile_config", "build_config"))
    with open(os.path.join(preset_dir, "task.json"), "w") as f:
        json.dump(config, f, indent=4)
    if task.has_task_weights():
        task.save_task_weights(os.path.join(preset_dir, "task.weights.h5"))
    task.backbone.save_to_preset(preset_dir, max_shard_size=max_shard_size)


def _drop_keys(config: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        config.pop(key, None)
    for value in config.values():
        if isinstance(value, dict):
            _drop_keys(value, keys)
