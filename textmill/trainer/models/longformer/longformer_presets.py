"""Longformer backbone configurations (architectures only, no weights).

Build one with `LongformerBackbone(**backbone_presets[name]["config"])`; load
trained weights with `LongformerBackbone.from_preset(directory)` on a preset
directory written by `textmill.trainer.convert.convert_longformer` or by
`save_to_preset`.
"""

import json
import os

import keras

backbone_presets = {
    "longformer_base_4096": {
        "metadata": {
            "description": (
                "12-layer Longformer (RoBERTa-base size), 4096 tokens, "
                "attention window 512; allenai/longformer-base-4096."
            ),
        },
        "config": {
            "vocabulary_size": 50265,
            "num_layers": 12,
            "num_heads": 12,
            "hidden_dim": 768,
            "intermediate_dim": 3072,
            "attention_window": 512,
            "max_global_tokens": 64,
            "dropout": 0.1,
            "max_sequence_length": 4096,
            "pad_token_id": 1,
            "layer_norm_epsilon": 1e-5,
        },
    },
    "longformer_tiny": {
        "metadata": {
            "description": (
                "2-layer, 64-wide Longformer for tests and smoke runs: 512 "
                "tokens, attention window 32, 1000-token vocabulary."
            ),
        },
        "config": {
            "vocabulary_size": 1000,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 64,
            "intermediate_dim": 128,
            "attention_window": 32,
            "max_global_tokens": 8,
            "dropout": 0.1,
            "max_sequence_length": 512,
            "pad_token_id": 1,
            "layer_norm_epsilon": 1e-5,
        },
    },
}


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
