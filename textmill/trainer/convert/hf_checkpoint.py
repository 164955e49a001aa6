"""Reads Hugging Face checkpoint directories without network or PyTorch.

`read_hf_config` returns `config.json` as a dict. `read_hf_weights` returns
every tensor of the checkpoint as a float32 (or integer) numpy array keyed by
its **PyTorch name and layout** (`encoder.layer.0.attention.self.query.weight`
with shape `(out, in)`), whatever the file format:

- `model.safetensors` (and sharded `model.safetensors.index.json`), written by
  PyTorch (`format: pt`) or by the TF classes (`format: tf`, TF names);
  parsed directly, so bfloat16 tensors need no PyTorch either;
- `tf_model.h5` (and `tf_model.h5.index.json`), the Keras 2 weight files the
  TF classes write;
- `pytorch_model.bin` (and its index), only if `torch` can be imported.

TF names are mapped the way the Hugging Face libraries map them between
frameworks: the model-name scope is dropped, `layer_._0` becomes `layer.0`,
`kernel`/`gamma`/`embeddings` become `weight` (kernels transposed), `beta`
becomes `bias`.
"""

import json
import logging
import os
import struct

import numpy as np

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
H5_FILE = "tf_model.h5"
BIN_FILE = "pytorch_model.bin"
# Tried in this order; each may also be sharded behind `<name>.index.json`.
WEIGHT_FILES = (SAFETENSORS_FILE, H5_FILE, BIN_FILE)

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_hf_config(hf_dir: str) -> dict:
    """Reads `config.json` of a Hugging Face checkpoint directory.

    Args:
        hf_dir: the checkpoint directory.

    Returns:
        The parsed config.

    Raises:
        FileNotFoundError: if the directory or its `config.json` is missing.
        ValueError: if `config.json` is not valid JSON.
    """
    if not os.path.isdir(hf_dir):
        raise FileNotFoundError(
            f"Hugging Face checkpoint directory {hf_dir!r} does not exist; "
            "pass the directory that `save_pretrained()` wrote. textmill "
            "reads local files only: on a machine with network access, "
            "`huggingface-cli download MODEL_ID (e.g. distilgpt2) "
            f"--local-dir {hf_dir}` fetches a Hub model into it."
        )
    path = os.path.join(hf_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path!r} is missing: {hf_dir!r} is not a Hugging Face "
            "checkpoint directory (expected config.json next to the weights)."
        )
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path!r} is not valid JSON: {error}") from error


def read_hf_weights(hf_dir: str) -> dict[str, np.ndarray]:
    """Reads all weights of a Hugging Face checkpoint, PyTorch-named.

    Args:
        hf_dir: the checkpoint directory.

    Returns:
        `{pytorch_name: array}`; floating arrays are float32, in PyTorch
        layout (dense weights `(out, in)`).

    Raises:
        FileNotFoundError: if no supported weight file is present.
        ImportError: if only `pytorch_model.bin` is present and `torch` is not
            installed.
        ValueError: if a weight file is malformed.
    """
    for name in WEIGHT_FILES:
        files = _weight_files(hf_dir, name)
        if files:
            logger.info("Reading %s", ", ".join(files))
            weights = {}
            for path in files:
                weights.update(_READERS[name](path))
            return {key: _to_float32(array) for key, array in weights.items()}
    present = sorted(os.listdir(hf_dir)) if os.path.isdir(hf_dir) else []
    raise FileNotFoundError(
        f"No weights in {hf_dir!r}: expected one of {', '.join(WEIGHT_FILES)} "
        f"(or a sharded <name>.index.json), found {present}."
    )


def _weight_files(hf_dir: str, name: str) -> list[str]:
    """The file(s) holding `name`: itself, or the shards its index lists."""
    path = os.path.join(hf_dir, name)
    if os.path.isfile(path):
        return [path]
    index = path + ".index.json"
    if not os.path.isfile(index):
        return []
    with open(index, encoding="utf-8") as f:
        weight_map = json.load(f).get("weight_map", {})
    shards = sorted(set(weight_map.values()))
    if not shards:
        raise ValueError(f"{index!r} has an empty `weight_map`.")
    return [os.path.join(hf_dir, shard) for shard in shards]


def _to_float32(array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        return np.asarray(array, dtype=np.float32)
    return np.asarray(array)


def tf_name_to_pytorch(name: str, array: np.ndarray) -> tuple[str, np.ndarray]:
    """Maps one TF (Keras 2) weight name and value to PyTorch's.

    Args:
        name: a TF weight name without the model-name scope, e.g.
            `longformer/encoder/layer_._0/attention/self/query/kernel:0`.
        array: its value.

    Returns:
        `(pytorch_name, array_in_pytorch_layout)`, e.g.
        `("longformer.encoder.layer.0.attention.self.query.weight", W.T)`.
    """
    name = name.split(":")[0].replace("_._", "/")
    parts = name.split("/")
    leaf = parts[-1]
    if leaf == "kernel":
        parts[-1] = "weight"
        array = array.T
    elif leaf in ("gamma", "embeddings"):
        parts[-1] = "weight"
    elif leaf == "beta":
        parts[-1] = "bias"
    return ".".join(parts), array


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        try:
            header = json.loads(f.read(header_size))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{path!r} is not a safetensors file (bad header): {error}"
            ) from error
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    metadata = header.pop("__metadata__", None) or {}
    weights = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = _decode_safetensor(data[begin:end], info["dtype"], path, name)
        array = array.reshape(info["shape"])
        if metadata.get("format") == "tf":
            name, array = tf_name_to_pytorch(name, array)
        weights[name] = array
    return weights


def _decode_safetensor(raw, dtype: str, path: str, name: str) -> np.ndarray:
    if dtype == "BF16":
        # bfloat16 is the upper half of a float32.
        upper = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32)
        return (upper << 16).view(np.float32)
    if dtype not in _SAFETENSORS_DTYPES:
        raise ValueError(
            f"Tensor {name!r} in {path!r} has unsupported dtype {dtype}; "
            f"supported: BF16, {', '.join(_SAFETENSORS_DTYPES)}."
        )
    return np.frombuffer(raw, dtype=_SAFETENSORS_DTYPES[dtype]).copy()


def _read_h5(path: str) -> dict[str, np.ndarray]:
    import h5py

    weights = {}
    with h5py.File(path, "r") as f:
        layer_names = f.attrs.get("layer_names")
        if layer_names is None:
            raise ValueError(
                f"{path!r} is not a Keras 2 weights file (no `layer_names` "
                "attribute); re-save it with `save_pretrained()`."
            )
        for layer_name in _strings(layer_names):
            group = f[layer_name]
            for weight_name in _strings(group.attrs.get("weight_names", [])):
                # Drop the model-name scope: `tf_model/encoder/...`.
                scoped = weight_name.split("/", 1)[-1]
                name, array = tf_name_to_pytorch(
                    scoped, np.asarray(group[weight_name])
                )
                weights[name] = array
    return weights


def _strings(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


def _read_bin(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"{path!r} is a PyTorch pickle and `torch` is not installed. "
            "Re-save the checkpoint as safetensors where torch is available "
            "(`model.save_pretrained(dir, safe_serialization=True)`), or "
            "install torch."
        ) from error
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        name: tensor.float().numpy()
        if tensor.is_floating_point()
        else tensor.numpy()
        for name, tensor in state.items()
    }


_READERS = {
    SAFETENSORS_FILE: _read_safetensors,
    H5_FILE: _read_h5,
    BIN_FILE: _read_bin,
}
