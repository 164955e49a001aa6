"""Writes a random Hugging Face BART checkpoint, its tokenizer and outputs.

Run as `TF_USE_LEGACY_KERAS=1 python bart_hf_reference.py CORPUS OUT_DIR`
(the TF classes of `transformers` need Keras 2, so never in the Keras 3 test
process). CORPUS is a JSON Lines file (optionally gzipped) of `{"text": ...}`
documents. It writes:

- `OUT_DIR/tokenizer/`: `vocab.json` + `merges.txt` of a byte-level BPE
  trained on CORPUS with the `tokenizers` library, with BART's special
  tokens (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, and `<mask>` last);
- `OUT_DIR/h5/`: `save_pretrained()` of a random
  `TFBartForConditionalGeneration` (`tf_model.h5`, TF names), with the
  tokenizer files;
- `OUT_DIR/safetensors/`: the same weights as a PyTorch-named
  `model.safetensors` (`model.` prefix, the tied `lm_head.weight` and
  `embed_tokens` copies included, as PyTorch checkpoints hold them), with
  the tokenizer files;
- `OUT_DIR/reference.npz`: right-padded source ids and their mask,
  decoder inputs (`</s>` then target tokens) and HF's logits; greedy
  sources and HF's greedy continuations.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

# Beside this script, whose folder Python puts first on sys.path.
from hf_pytorch_names import pytorch_named_tensors
from hf_reference_files import (
    read_corpus,
    save_checkpoints,
    train_byte_level_bpe,
)
from transformers import BartConfig, TFBartForConditionalGeneration

VOCAB_SIZE = 1000
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
MASK_TOKEN = "<mask>"
START = 2  # `</s>`: BART's decoder start and end token.
PAD = 1
POSITIONS = 64
# Rows of the logits batch: source and decoder lengths, right-padded.
SOURCE_LENGTHS = (40, 23, 7)
DECODER_LENGTHS = (30, 12, 5)
GREEDY_SOURCE_LENGTHS = (9, 26, 17)
NEW_TOKENS = 20
# Standard deviations of some weights (by layer name), so that greedy
# decoding moves on instead of repeating one token.
SCALES = {"embed_positions": 1.0, "encoder_attn/": 0.1}


def train_tokenizer(documents, out_dir):
    """A byte-level BPE with BART's special tokens on documents."""
    tokenizer = train_byte_level_bpe(documents, VOCAB_SIZE - 1, SPECIAL_TOKENS)
    # BART's `<mask>` is the last id.
    tokenizer.add_special_tokens([MASK_TOKEN])
    os.makedirs(out_dir)
    tokenizer.model.save(out_dir)
    vocab_path = os.path.join(out_dir, "vocab.json")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    vocab[MASK_TOKEN] = len(vocab)
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return tokenizer


def randomize(model, rng):
    """Draws every weight anew, large enough for decisive greedy choices;
    `final_logits_bias` stays zero, as in BART's checkpoints."""
    for weight in model.weights:
        if "final_logits_bias" in weight.name:
            continue
        scale = next(
            (value for key, value in SCALES.items() if key in weight.name),
            0.2,
        )
        if "beta" in weight.name:
            # A large shift after the last layer norm picks one token at
            # every step.
            scale = 0.02
        value = rng.normal(0.0, scale, weight.shape)
        if "layer_norm" in weight.name and "gamma" in weight.name:
            value += 1.0
        if "layernorm_embedding" in weight.name and "gamma" in weight.name:
            value += 1.0
        if "shared" in weight.name:
            # Rows of one norm: no token wins every step by its norm alone.
            value *= 2.0 / np.linalg.norm(value, axis=1, keepdims=True)
        weight.assign(value.astype(np.float32))


def pytorch_checkpoint_tensors(model):
    """The weights under `BartForConditionalGeneration`'s PyTorch names,
    the tied copies of the shared embedding included."""
    tensors = pytorch_named_tensors(model)
    shared = tensors["model.shared.weight"]
    for copy in (
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ):
        tensors[copy] = shared.copy()
    return tensors


def padded(tokenizer, documents, lengths, first=None):
    """Rows of the first `length` token ids of documents (after `first`
    when given), right-padded with `<pad>`, and their mask."""
    token_ids = np.full((len(lengths), max(lengths)), PAD, np.int32)
    mask = np.zeros_like(token_ids)
    for row, (document, length) in enumerate(
        zip(documents, lengths, strict=False)
    ):
        ids = ([first] if first is not None else []) + tokenizer.encode(
            document
        ).ids
        assert len(ids) >= length, "corpus document too short"
        token_ids[row, :length] = ids[:length]
        mask[row, :length] = 1
    return token_ids, mask


def main(corpus_path, out_dir):
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    documents = read_corpus(corpus_path)
    tokenizer_dir = os.path.join(out_dir, "tokenizer")
    tokenizer = train_tokenizer(documents, tokenizer_dir)
    config = BartConfig(
        vocab_size=tokenizer.get_vocab_size(),
        max_position_embeddings=POSITIONS,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        activation_function="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=False,
        pad_token_id=PAD,
        bos_token_id=0,
        eos_token_id=START,
        decoder_start_token_id=START,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
    )
    model = TFBartForConditionalGeneration(config)
    model(
        input_ids=np.zeros((1, 2), np.int32),
        decoder_input_ids=np.zeros((1, 2), np.int32),
    )
    randomize(model, rng)

    source_ids, source_mask = padded(tokenizer, documents, SOURCE_LENGTHS)
    decoder_ids, _ = padded(
        tokenizer, documents[3:], DECODER_LENGTHS, first=START
    )
    logits = model(
        input_ids=source_ids,
        attention_mask=source_mask,
        decoder_input_ids=decoder_ids,
    ).logits.numpy()
    greedy_ids, greedy_mask = padded(
        tokenizer, documents[6:], GREEDY_SOURCE_LENGTHS
    )
    continuations = model.generate(
        greedy_ids,
        attention_mask=greedy_mask,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        num_beams=1,
        # Never stop early: every row decodes every step.
        eos_token_id=None,
    ).numpy()
    np.savez(
        os.path.join(out_dir, "reference.npz"),
        source_ids=source_ids,
        source_mask=source_mask,
        decoder_ids=decoder_ids,
        logits=logits,
        greedy_ids=greedy_ids,
        greedy_mask=greedy_mask,
        # Without the start token HF puts first.
        continuations=continuations[:, 1:],
    )
    save_checkpoints(
        model, pytorch_checkpoint_tensors(model), out_dir, tokenizer_dir
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
