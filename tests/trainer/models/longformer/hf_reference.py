"""Writes random Hugging Face Longformer/RoBERTa checkpoints and outputs.

Run as `TF_USE_LEGACY_KERAS=1 python hf_reference.py OUT_DIR [--real-size]`
(the TF classes of `transformers` need Keras 2, so never in the Keras 3 test
process). For every case it writes `OUT_DIR/<case>/` (a `save_pretrained()`
checkpoint) and `OUT_DIR/<case>.npz` with the inputs, the last hidden states
and, for masked LMs, the logits. Checkpoint formats vary by case:
`tf_model.h5`, TF-named `model.safetensors`, and PyTorch-named
`model.safetensors`.

`--real-size` also writes `OUT_DIR/real_size/`, a narrow Longformer at the
real window (512) and length (4,096), and `OUT_DIR/real_<case>.npz` for each
of `REAL_SIZE_CASES`.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
from hf_pytorch_names import pytorch_named_tensors
from safetensors.numpy import save_file
from transformers import (
    LongformerConfig,
    RobertaConfig,
    TFLongformerForMaskedLM,
    TFLongformerModel,
    TFRobertaForMaskedLM,
)

VOCAB = 64
PAD = 1


def make_inputs(rng, lengths, total, globals_by_row):
    """Token ids (`<s>` first, `</s>` last, pad 1) and HF-style masks."""
    token_ids = np.full((len(lengths), total), PAD, np.int32)
    attention = np.zeros((len(lengths), total), np.int32)
    global_mask = np.zeros((len(lengths), total), np.int32)
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(3, VOCAB, length)
        token_ids[row, 0], token_ids[row, length - 1] = 0, 2
        attention[row, :length] = 1
        global_mask[row, globals_by_row[row]] = 1
    return token_ids, attention, global_mask


def randomize(model, rng):
    """Draws every weight anew: Keras 2 initializers repeat their values."""
    for weight in model.weights:
        value = rng.normal(0.0, 0.2, weight.shape)
        if (
            "LayerNorm/gamma" in weight.name
            or "layer_norm/gamma" in weight.name
        ):
            value += 1.0
        weight.assign(value.astype(np.float32))


def save_pytorch_named(model, directory):
    """Saves `model` as a PyTorch-named safetensors file (HF's own mapping).

    A bare base model's names lose the `longformer.` prefix, as PyTorch's
    `LongformerModel` state dicts have none.
    """
    tensors = pytorch_named_tensors(model)
    if isinstance(model, TFLongformerModel):
        tensors = {k.removeprefix("longformer."): v for k, v in tensors.items()}
    model.config.save_pretrained(directory)
    save_file(
        tensors,
        os.path.join(directory, "model.safetensors"),
        metadata={"format": "pt"},
    )


def longformer_config(window, layers):
    return LongformerConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        attention_window=window,
        max_position_embeddings=66,
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


CASES = {
    # name: (model class, window, layers, row lengths, padded length,
    #        global positions per row, save format)
    "h5_window4_no_global": (
        TFLongformerForMaskedLM,
        4,
        2,
        [13, 9],
        13,
        [[], []],
        "h5",
    ),
    "tf_safetensors_list_start": (
        TFLongformerForMaskedLM,
        [4, 8],
        2,
        [16, 11],
        16,
        [[0], [0]],
        "tf_st",
    ),
    "pt_safetensors_scattered": (
        TFLongformerForMaskedLM,
        [2, 8, 4],
        3,
        [21, 15],
        21,
        [[0, 5, 9, 17], [3]],
        "pt_st",
    ),
    "base_model_globals": (
        TFLongformerModel,
        6,
        2,
        [30, 27],
        30,
        [[0, 29], [0, 1, 2]],
        "pt_st",
    ),
}


def run_longformer(out_dir, name, spec, rng):
    cls, window, layers, lengths, total, globals_by_row, fmt = spec
    model = cls(longformer_config(window, layers))
    model(np.zeros((1, 2), np.int32))
    randomize(model, rng)
    token_ids, attention, global_mask = make_inputs(
        rng, lengths, total, globals_by_row
    )
    outputs = model(
        token_ids,
        attention_mask=attention,
        global_attention_mask=global_mask,
        output_hidden_states=True,
    )
    result = {
        "token_ids": token_ids,
        "padding_mask": attention * (global_mask + 1),
        "hidden": outputs.hidden_states[-1].numpy(),
    }
    if cls is TFLongformerForMaskedLM:
        result["logits"] = outputs.logits.numpy()
    directory = os.path.join(out_dir, name)
    if fmt == "pt_st":
        save_pytorch_named(model, directory)
    else:
        model.save_pretrained(directory, safe_serialization=fmt == "tf_st")
    np.savez(os.path.join(out_dir, name + ".npz"), **result)


def run_roberta(out_dir, rng):
    """A RoBERTa MLM; converted to Longformer it must give the same logits."""
    config = RobertaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=34,
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = TFRobertaForMaskedLM(config)
    model(np.zeros((1, 2), np.int32))
    randomize(model, rng)
    token_ids, attention, _ = make_inputs(rng, [20, 14], 20, [[], []])
    outputs = model(
        token_ids, attention_mask=attention, output_hidden_states=True
    )
    directory = os.path.join(out_dir, "roberta")
    model.save_pretrained(directory)
    for asset, text in (
        ("vocab.json", json.dumps({"<s>": 0})),
        ("merges.txt", "#version: 0.2\n"),
    ):
        with open(os.path.join(directory, asset), "w") as f:
            f.write(text)
    np.savez(
        os.path.join(out_dir, "roberta.npz"),
        token_ids=token_ids,
        padding_mask=attention,
        hidden=outputs.hidden_states[-1].numpy(),
        logits=outputs.logits.numpy(),
    )


def _spread(rng, count, length):
    """`count` sorted global positions: `<s>`, the last token, the rest."""
    inner = rng.choice(np.arange(1, length - 1), count - 2, replace=False)
    return sorted([0, length - 1, *inner.tolist()])


# name -> (row lengths, padded length, global positions per row): the real
# window with real lengths, padding, and more global tokens than a bound.
REAL_SIZE_CASES = {
    "4096_start_global": ([4096], 4096, lambda rng: [[0]]),
    "2500_3_global_301_padding": (
        [2199, 2500],
        2500,
        lambda rng: [[0, 1000, 2198], [0]],
    ),
    "3000_100_global": ([3000], 3000, lambda rng: [list(range(100))]),
    "4096_200_global": ([4096], 4096, lambda rng: [_spread(rng, 200, 4096)]),
}


def run_real_size(out_dir, rng):
    """One narrow, 2-layer Longformer at window 512, run on every case."""
    config = longformer_config(512, 2)
    config.max_position_embeddings = 4096 + PAD + 1
    model = TFLongformerModel(config)
    model(np.zeros((1, 2), np.int32))
    randomize(model, rng)
    model.save_pretrained(os.path.join(out_dir, "real_size"))
    for name, (lengths, total, globals_of) in REAL_SIZE_CASES.items():
        token_ids, attention, global_mask = make_inputs(
            rng, lengths, total, globals_of(rng)
        )
        outputs = model(
            token_ids,
            attention_mask=attention,
            global_attention_mask=global_mask,
        )
        np.savez(
            os.path.join(out_dir, f"real_{name}.npz"),
            token_ids=token_ids,
            padding_mask=attention * (global_mask + 1),
            hidden=outputs.last_hidden_state.numpy(),
        )


def main(out_dir, real_size):
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    for name, spec in CASES.items():
        run_longformer(out_dir, name, spec, rng)
    run_roberta(out_dir, rng)
    if real_size:
        run_real_size(out_dir, rng)


if __name__ == "__main__":
    main(sys.argv[1], "--real-size" in sys.argv[2:])
