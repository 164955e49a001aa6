"""Writes random Hugging Face BERT checkpoints and their outputs.

Run as `TF_USE_LEGACY_KERAS=1 python hf_reference.py OUT_DIR [--real-size]`
(the TF classes of `transformers` need Keras 2, so never in the Keras 3 test
process). For
every case it writes `OUT_DIR/<case>/` (a checkpoint with a `vocab.txt`) and
`OUT_DIR/<case>.npz` with the inputs (padding and segment ids included)
and the model's outputs: MLM logits at every position and NSP logits
(`TFBertForPreTraining`), NSP logits (`TFBertForNextSentencePrediction`),
or the sequence and pooled outputs (`TFBertModel`). Formats vary by case:
`tf_model.h5`, TF-named `model.safetensors`, and PyTorch-named
`model.safetensors` (with `gamma`/`beta` layer norm names, as older
checkpoints have). `--real-size` adds `real_size`: BERT-base's vocabulary
size (30,522) and 512 positions, run on 512-token pairs, one of them padded.
"""

import os
import sys

import numpy as np
import tensorflow as tf
from hf_pytorch_names import pytorch_named_tensors
from safetensors.numpy import save_file
from transformers import (
    BertConfig,
    TFBertForNextSentencePrediction,
    TFBertForPreTraining,
    TFBertModel,
)

VOCAB = 48
REAL_VOCAB = 30522  # bert-base-uncased
REAL_POSITIONS = 512
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CASES = {
    # name: (model class, hidden_act, save format)
    "h5_exact_gelu": (TFBertForPreTraining, "gelu", "h5"),
    "tf_safetensors_exact_gelu": (TFBertForPreTraining, "gelu", "tf_st"),
    "pt_safetensors_tanh_gelu": (TFBertForPreTraining, "gelu_new", "pt_st"),
    "nsp_only": (TFBertForNextSentencePrediction, "gelu", "h5"),
    "base_model": (TFBertModel, "gelu", "pt_st"),
}


def randomize(model, rng):
    """Draws every weight anew, large enough that GELU's form matters."""
    for weight in model.weights:
        value = rng.normal(0.0, 0.2, weight.shape)
        if "LayerNorm/gamma" in weight.name:
            value += 1.0
        weight.assign(value.astype(np.float32))


def make_inputs(rng, vocab=VOCAB, total=14, lengths=((5, 6), (3, 4))):
    """Pairs of different lengths, padded: `[CLS] A [SEP] B [SEP]`."""
    token_ids = np.zeros((len(lengths), total), np.int32)
    segment_ids = np.zeros((len(lengths), total), np.int32)
    attention = np.zeros((len(lengths), total), np.int32)
    for row, (length_a, length_b) in enumerate(lengths):
        a = rng.integers(5, vocab, length_a)
        b = rng.integers(5, vocab, length_b)
        ids = [2, *a, 3, *b, 3]
        token_ids[row, : len(ids)] = ids
        segment_ids[row, length_a + 2 : len(ids)] = 1
        attention[row, : len(ids)] = 1
    return token_ids, segment_ids, attention


def save_pytorch_named(model, directory):
    """A PyTorch-named safetensors file, layer norms as `gamma`/`beta`."""
    tensors = {
        (
            name.replace(".weight", ".gamma").replace(".bias", ".beta")
            if "LayerNorm" in name
            else name
        ): value
        for name, value in pytorch_named_tensors(model).items()
    }
    if isinstance(model, TFBertForPreTraining):
        tensors["cls.predictions.decoder.weight"] = tensors[
            "bert.embeddings.word_embeddings.weight"
        ]
    if isinstance(model, TFBertModel):
        # PyTorch's BertModel state dict has no `bert.` prefix.
        tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}
    model.config.save_pretrained(directory)
    save_file(
        tensors,
        os.path.join(directory, "model.safetensors"),
        metadata={"format": "pt"},
    )


def run_case(
    out_dir,
    name,
    model_class,
    activation,
    fmt,
    rng,
    vocab=VOCAB,
    positions=20,
    input_kwargs=None,
):
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=positions,
        type_vocab_size=2,
        hidden_act=activation,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = model_class(config)
    model(np.zeros((1, 2), np.int32))
    randomize(model, rng)
    token_ids, segment_ids, attention = make_inputs(
        rng, vocab, **(input_kwargs or {})
    )
    outputs = model(
        token_ids, attention_mask=attention, token_type_ids=segment_ids
    )
    if model_class is TFBertForPreTraining:
        results = {
            "mlm_logits": outputs.prediction_logits.numpy(),
            "nsp_logits": outputs.seq_relationship_logits.numpy(),
        }
    elif model_class is TFBertForNextSentencePrediction:
        results = {"nsp_logits": outputs.logits.numpy()}
    else:
        results = {
            "sequence_output": outputs.last_hidden_state.numpy(),
            "pooled_output": outputs.pooler_output.numpy(),
        }
    directory = os.path.join(out_dir, name)
    if fmt == "pt_st":
        save_pytorch_named(model, directory)
    else:
        model.save_pretrained(directory, safe_serialization=fmt == "tf_st")
    words = [f"w{i}" for i in range(vocab - len(SPECIAL))]
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("".join(f"{token}\n" for token in SPECIAL + words))
    np.savez(
        os.path.join(out_dir, name + ".npz"),
        token_ids=token_ids,
        segment_ids=segment_ids,
        padding_mask=attention,
        **results,
    )


def main(out_dir, real_size):
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    for name, (model_class, activation, fmt) in CASES.items():
        run_case(out_dir, name, model_class, activation, fmt, rng)
    if real_size:
        # 3 special tokens + 254 + 255 = 512; the second pair is padded.
        run_case(
            out_dir,
            "real_size",
            TFBertForPreTraining,
            "gelu",
            "pt_st",
            rng,
            vocab=REAL_VOCAB,
            positions=REAL_POSITIONS,
            input_kwargs={
                "total": REAL_POSITIONS,
                "lengths": ((254, 255), (120, 200)),
            },
        )


if __name__ == "__main__":
    main(sys.argv[1], "--real-size" in sys.argv[2:])
