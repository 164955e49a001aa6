"""`textmill convert FAMILY HF_DIR OUT_DIR`: checkpoints to keras-hub."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# family -> (module, function(hf_dir, out_dir) -> out_dir, help). Modules
# are imported only when their family is converted.
CONVERTERS = {
    "bart": (
        "textmill.trainer.convert.bart",
        "convert_bart",
        "BART (BartModel, BartForConditionalGeneration), for translation",
    ),
    "bert": (
        "textmill.trainer.convert.bert",
        "convert_bert",
        "BERT (BertModel, BertForPreTraining, BertForMaskedLM, NSP)",
    ),
    "gpt2": (
        "textmill.trainer.convert.gpt2",
        "convert_gpt2",
        "GPT-2 / DistilGPT2 (GPT2Model, GPT2LMHeadModel)",
    ),
    "longformer": (
        "textmill.trainer.convert.longformer",
        "convert_longformer",
        "Longformer (LongformerModel, LongformerForMaskedLM)",
    ),
    "roberta-to-longformer": (
        "textmill.trainer.convert.longformer",
        "convert_roberta_to_longformer",
        "RoBERTa, extended to a 4096-position Longformer",
    ),
}


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Adds the `convert` command.

    Args:
        subparsers: the `textmill` parser's subparsers.

    Returns:
        command name -> handler taking the parsed arguments, returning the
        exit status.
    """
    convert = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face checkpoint directory (no network) into "
        "a keras-hub preset directory for --init-from",
        description="Families: "
        + "; ".join(f"{name}: {item[2]}" for name, item in CONVERTERS.items()),
    )
    convert.add_argument("family", choices=sorted(CONVERTERS))
    convert.add_argument(
        "hf_dir",
        metavar="HF_DIR",
        help="directory with config.json, weights (model.safetensors, "
        "tf_model.h5 or pytorch_model.bin) and tokenizer files",
    )
    convert.add_argument(
        "out_dir", metavar="OUT_DIR", help="preset directory to write"
    )
    return {"convert": _cmd_convert}


def _cmd_convert(args: argparse.Namespace) -> int:
    module_name, function_name, _ = CONVERTERS[args.family]
    converter = getattr(importlib.import_module(module_name), function_name)
    try:
        out_dir = converter(args.hf_dir, args.out_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"textmill convert {args.family}: {error}", file=sys.stderr)
        return 1
    print(out_dir)
    return 0
