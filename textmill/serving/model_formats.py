"""Where the formats of a trained model live inside a Model artifact.

TFX's Trainer writes the serving SavedModel to `MODEL_URI/Format-Serving`;
textmill adds the bare network that TFLite converts and, for causal LMs,
a keras-hub preset to fine-tune from. Plain path functions, so readers
(TFLite export, run summaries) need no model code.
"""

import os

NETWORK_FORMAT_DIR = "Format-Network"
PRESET_FORMAT_DIR = "Format-Preset"


def network_model_path(model_uri: str) -> str:
    """Where the bare-network SavedModel lives inside a Model artifact."""
    return os.path.join(model_uri, NETWORK_FORMAT_DIR)


def network_tokenizer_dir(network_dir: str) -> str:
    """Where the tokenizer files (vocab.txt, merges.txt) lie beside the
    bare-network SavedModel."""
    return os.path.join(network_dir, "assets.extra")


def preset_model_path(model_uri: str) -> str:
    """Where the keras-hub preset to fine-tune from lives inside a Model
    artifact (`--init-from` takes it)."""
    return os.path.join(model_uri, PRESET_FORMAT_DIR)
