"""Packs a `.litertlm` bundle: the TFLite model, `tokenizer.json` and the
LLM metadata (start and stop tokens, sampler defaults, token budget).

The packer is the `litert-lm pack` CLI of the LiteRT-LM venv (see
`environment`), driven by a `model.toml` written here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile

from textmill.serving.litert_lm.environment import require_litert_venv

LITERTLM_SUFFIX = ".litertlm"
_PACK_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class BundleMetadata:
    """What the runtime reads besides the model and the tokenizer.

    Args:
        start_token_id: put before every prompt (GPT-2: end-of-text).
        stop_token_ids: a completion ends after one of these.
        max_num_tokens: prompt plus completion tokens the bundle serves
            (the cache length less one prefill chunk).
        top_k: the sampler's default k; 1 with `top_p` 1 is greedy (the
            CPU sampler implements only top-p sampling).
        top_p: the sampler's default p.
        temperature: the sampler's default temperature.
    """

    start_token_id: int
    stop_token_ids: tuple[int, ...]
    max_num_tokens: int
    top_k: int = 1
    top_p: float = 1.0
    temperature: float = 1.0

    def to_textproto(self) -> str:
        """The `LlmMetadata` message in protobuf text format."""
        stops = "\n".join(
            f"stop_tokens {{ token_ids {{ ids: {i} }} }}"
            for i in self.stop_token_ids
        )
        return (
            f"start_token {{ token_ids {{ ids: {self.start_token_id} }} }}\n"
            f"{stops}\n"
            f"sampler_params {{ type: TOP_P k: {self.top_k} "
            f"p: {self.top_p} temperature: {self.temperature} seed: 0 }}\n"
            f"max_num_tokens: {self.max_num_tokens}\n"
            "llm_model_type { generic_model {} }\n"
        )


_MODEL_TOML = """\
[[section]]
section_type = "LlmMetadata"
data_path = "llm_metadata.pbtxt"

[[section]]
section_type = "TFLiteModel"
model_type = "prefill_decode"
data_path = "model.tflite"

[[section]]
section_type = "HF_Tokenizer"
data_path = "tokenizer.json"
"""


def pack_bundle(
    tflite_model: bytes,
    tokenizer_json: str,
    metadata: BundleMetadata,
    out_path: str,
) -> int:
    """Writes a `.litertlm` bundle.

    Args:
        tflite_model: the flatbuffer with `prefill_<T>` and `decode`
            signatures (see `kv_cache_tflite`).
        tokenizer_json: path of the HF `tokenizer.json`.
        metadata: start and stop tokens, sampler defaults, token budget.
        out_path: the bundle to write (local path).

    Returns:
        The bundle's size in bytes.

    Raises:
        FileNotFoundError: no LiteRT-LM venv.
        RuntimeError: the packer failed (its output is in the message).
    """
    packer = os.path.join(require_litert_venv(), "bin", "litert-lm")
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "model.tflite"), "wb") as f:
            f.write(tflite_model)
        shutil.copy(tokenizer_json, os.path.join(folder, "tokenizer.json"))
        with open(os.path.join(folder, "llm_metadata.pbtxt"), "w") as f:
            f.write(metadata.to_textproto())
        toml = os.path.join(folder, "model.toml")
        with open(toml, "w") as f:
            f.write(_MODEL_TOML)
        packed = os.path.join(folder, "model" + LITERTLM_SUFFIX)
        done = subprocess.run(
            [packer, "pack", toml, "--output", packed],
            capture_output=True,
            text=True,
            timeout=_PACK_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not os.path.isfile(packed):
            raise RuntimeError(
                f"`litert-lm pack` failed (exit {done.returncode}) for "
                f"{out_path!r}:\n{done.stdout}\n{done.stderr}"
            )
        shutil.move(packed, out_path)
    return os.path.getsize(out_path)
