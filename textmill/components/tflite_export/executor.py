"""TFLiteExport executor."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from textmill.families import load_family
from textmill.features import (
    EXAMPLES_KEY,
    MODEL_KEY,
    PARITY_WINDOWS_KEY,
    TFLITE_MODEL_KEY,
    VARIANTS_KEY,
)
from textmill.serving.litert_lm.export import export_litert_lm
from textmill.serving.model_formats import (
    network_model_path,
    network_tokenizer_dir,
    preset_model_path,
)
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits
from textmill.serving.signatures import LOGITS_FROM_IDS
from textmill.serving.tflite_conversion import (
    TFLiteLogits,
    convert_to_tflite,
    parity_report,
)
from textmill.serving.tflite_generation import (
    export_generation_tflite,
    has_generation_signature,
)

METADATA_FILE = "metadata.json"


def tflite_filename(variant: str) -> str:
    return f"model_{variant}.tflite"


class Executor(base_executor.BaseExecutor):
    """Converts, checks parity, writes flatbuffers and metadata.json."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        output = artifact_utils.get_single_instance(
            output_dict[TFLITE_MODEL_KEY]
        )
        model_dir = path_utils.serving_model_path(model.uri)
        model_metadata = read_model_metadata(model_dir)
        family = load_family(model_metadata["family"])
        reference = SavedModelLogits(model_dir)
        inputs = family.parity_inputs(
            model_dir, examples, exec_properties[PARITY_WINDOWS_KEY]
        )
        metadata = {
            "signature": LOGITS_FROM_IDS,
            "inputs": {
                name: {"shape": spec.shape.as_list(), "dtype": "int32"}
                for name, spec in reference.input_specs.items()
            },
            "outputs": ["logits"],
            "model": model_metadata,
            "variants": {},
        }
        for variant in json.loads(exec_properties[VARIANTS_KEY]):
            flatbuffer = convert_to_tflite(
                network_model_path(model.uri), variant
            )
            filename = tflite_filename(variant)
            io_utils.write_bytes_file(
                os.path.join(output.uri, filename), flatbuffer
            )
            report = parity_report(reference, TFLiteLogits(flatbuffer), inputs)
            metadata["variants"][variant] = {
                "file": filename,
                "bytes": len(flatbuffer),
                "parity": report,
            }
            logging.info(
                "TFLite %s: %d bytes, max |logit diff| %.2e, top-1 "
                "agreement %.4f over %d inputs",
                variant,
                len(flatbuffer),
                report["max_abs_logit_diff"],
                report["top1_agreement"],
                report["inputs"],
            )
        network_dir = network_model_path(model.uri)
        if has_generation_signature(network_dir):
            # On-device generation: the whole greedy loop, token ids in and
            # out, with the tokenizer files beside it.
            metadata["generation"] = export_generation_tflite(
                network_dir,
                network_tokenizer_dir(network_dir),
                output.uri,
                json.loads(exec_properties[VARIANTS_KEY]),
            )
            preset_dir = preset_model_path(model.uri)
            if tf.io.gfile.isdir(preset_dir):
                # LiteRT-LM bundles: the runtime drives the loop and the
                # cache, and tokenizes with the tokenizer.json inside.
                metadata["litert_lm"] = export_litert_lm(
                    preset_dir,
                    network_dir,
                    output.uri,
                    json.loads(exec_properties[VARIANTS_KEY]),
                )
        io_utils.write_string_file(
            os.path.join(output.uri, METADATA_FILE),
            json.dumps(metadata, indent=2),
        )
