"""Reading Hugging Face checkpoint directories (no network, no torch)."""

import importlib.util
import json
import struct

import h5py
import numpy as np
import pytest

from textmill.trainer.convert.hf_checkpoint import (
    read_hf_config,
    read_hf_weights,
    tf_name_to_pytorch,
)


def _write_safetensors(path, tensors, metadata=None, bfloat16=()):
    """Writes a safetensors file; names in `bfloat16` are stored as BF16."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        if name in bfloat16:
            raw = (array.astype(np.float32).view(np.uint32) >> 16).astype(
                np.uint16
            )
            dtype = "BF16"
        else:
            raw = array
            dtype = {"float32": "F32", "float16": "F16", "int64": "I64"}[
                array.dtype.name
            ]
        data = np.ascontiguousarray(raw).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))


def test_config_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_hf_config(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_hf_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_hf_config(str(tmp_path))


def test_missing_weights_list_what_is_there(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"found \['config.json'\]"):
        read_hf_weights(str(tmp_path))


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None, reason="torch is installed"
)
def test_pytorch_bin_without_torch_says_how_to_fix(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ImportError, match="safe_serialization=True"):
        read_hf_weights(str(tmp_path))


def test_pytorch_safetensors_with_bfloat16_and_shards(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 2)).astype(np.float32)
    half = rng.normal(size=(4,)).astype(np.float16)
    steps = np.arange(3, dtype=np.int64)
    _write_safetensors(
        tmp_path / "a.safetensors",
        {"encoder.weight": weight, "encoder.half": half},
        metadata={"format": "pt"},
        bfloat16=("encoder.weight",),
    )
    _write_safetensors(tmp_path / "b.safetensors", {"steps": steps})
    index = {
        "weight_map": {
            "encoder.weight": "a.safetensors",
            "encoder.half": "a.safetensors",
            "steps": "b.safetensors",
        }
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))

    weights = read_hf_weights(str(tmp_path))

    assert sorted(weights) == ["encoder.half", "encoder.weight", "steps"]
    # bfloat16 keeps 8 bits of mantissa.
    np.testing.assert_allclose(weights["encoder.weight"], weight, rtol=1e-2)
    assert weights["encoder.weight"].dtype == np.float32
    np.testing.assert_array_equal(weights["encoder.half"], half)
    np.testing.assert_array_equal(weights["steps"], steps)


def test_tf_safetensors_names_and_layout_become_pytorch(tmp_path):
    kernel = np.arange(6, dtype=np.float32).reshape(2, 3)
    gamma = np.ones(3, np.float32)
    _write_safetensors(
        tmp_path / "model.safetensors",
        {
            "bert/encoder/layer_._1/output/dense/kernel:0": kernel,
            "bert/encoder/layer_._1/output/LayerNorm/gamma:0": gamma,
        },
        metadata={"format": "tf"},
    )
    weights = read_hf_weights(str(tmp_path))
    np.testing.assert_array_equal(
        weights["bert.encoder.layer.1.output.dense.weight"], kernel.T
    )
    np.testing.assert_array_equal(
        weights["bert.encoder.layer.1.output.LayerNorm.weight"], gamma
    )


def test_keras2_h5_drops_the_model_scope(tmp_path):
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)
    table = np.ones((5, 2), np.float32)
    names = [
        "tf_model/transformer/h_._0/mlp/c_fc/kernel:0",
        "tf_model/transformer/wpe/embeddings:0",
    ]
    with h5py.File(tmp_path / "tf_model.h5", "w") as f:
        f.attrs["layer_names"] = [b"transformer"]
        group = f.create_group("transformer")
        group.attrs["weight_names"] = [n.encode() for n in names]
        group.create_dataset(names[0], data=kernel)
        group.create_dataset(names[1], data=table)
    weights = read_hf_weights(str(tmp_path))
    assert sorted(weights) == [
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.wpe.weight",
    ]
    np.testing.assert_array_equal(
        weights["transformer.h.0.mlp.c_fc.weight"], kernel.T
    )


def test_malformed_files_are_reported(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(
        struct.pack("<Q", 4) + b"\xff\xfe{x"
    )
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_hf_weights(str(tmp_path))


@pytest.mark.parametrize(
    "tf_name, pytorch_name, transposed",
    [
        (
            "a/layer_._3/attention/self/query/kernel:0",
            "a.layer.3.attention.self.query.weight",
            True,
        ),
        ("a/embeddings/LayerNorm/beta:0", "a.embeddings.LayerNorm.bias", False),
        (
            "a/embeddings/word_embeddings/weight:0",
            "a.embeddings.word_embeddings.weight",
            False,
        ),
        ("lm_head/bias:0", "lm_head.bias", False),
    ],
)
def test_tf_name_to_pytorch(tf_name, pytorch_name, transposed):
    value = np.zeros((2, 3), np.float32)
    name, array = tf_name_to_pytorch(tf_name, value)
    assert name == pytorch_name
    assert array.shape == ((3, 2) if transposed else (2, 3))
