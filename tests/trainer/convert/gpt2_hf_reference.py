"""Writes a random Hugging Face GPT-2 checkpoint, its tokenizer and outputs.

Run as `TF_USE_LEGACY_KERAS=1 python gpt2_hf_reference.py CORPUS OUT_DIR`
(the TF classes of `transformers` need Keras 2, so never in the Keras 3 test
process). CORPUS is a JSON Lines file (optionally gzipped) of `{"text": ...}`
documents. It writes:

- `OUT_DIR/tokenizer/`: `vocab.json` + `merges.txt` of a byte-level BPE
  trained on CORPUS with the `tokenizers` library, GPT-2 style;
- `OUT_DIR/h5/`: `save_pretrained()` of a random `TFGPT2LMHeadModel`
  (`tf_model.h5`, TF names), with the tokenizer files;
- `OUT_DIR/safetensors/`: the same weights as a PyTorch-named
  `model.safetensors`, laid out like the hub's `gpt2` checkpoint (bare
  `GPT2Model` names, causal-mask buffers included), with the tokenizer files;
- `OUT_DIR/reference.npz`: right-padded token ids, their padding mask and
  HF's logits; a packed window of all 1,024 positions and its logits;
  greedy prompts and HF's greedy continuations.
"""

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
from transformers import GPT2Config, TFGPT2LMHeadModel

VOCAB_SIZE = 1000
END_OF_TEXT = "<|endoftext|>"
# Rows of the logits batch, right-padded to the longest.
LOGIT_LENGTHS = (48, 31, 9)
GREEDY_PROMPT_LENGTHS = (7, 16)
# GPT-2's context: the model has as many positions, and one window fills it.
POSITIONS = 1024
NEW_TOKENS = 20


def train_tokenizer(documents, out_dir):
    """GPT-2's byte-level BPE (no prefix space, all 256 bytes) on documents."""
    tokenizer = train_byte_level_bpe(documents, VOCAB_SIZE, [END_OF_TEXT])
    os.makedirs(out_dir)
    tokenizer.model.save(out_dir)
    return tokenizer


def randomize(model, rng):
    """Draws every weight anew, large enough for decisive greedy choices."""
    for weight in model.weights:
        value = rng.normal(0.0, 0.2, weight.shape)
        if "ln_" in weight.name and "gamma" in weight.name:
            value += 1.0
        weight.assign(value.astype(np.float32))


def pytorch_checkpoint_tensors(model):
    """The weights as the hub's `gpt2` checkpoint holds them: bare
    `GPT2Model` names, causal-mask buffers included."""
    tensors = {}
    for name, value in pytorch_named_tensors(model).items():
        if name.endswith(".bias"):
            # TF's Conv1D keeps its bias as (1, nf), PyTorch's as (nf,).
            value = value.reshape(-1)
        tensors[name.removeprefix("transformer.")] = value
    positions = model.config.n_positions
    causal = np.tril(np.ones((positions, positions), np.float32))
    for layer in range(model.config.n_layer):
        # Old PyTorch checkpoints hold the causal mask as a buffer.
        tensors[f"h.{layer}.attn.bias"] = causal[None, None]
    return tensors


def padded_batch(tokenizer, documents, lengths):
    """The first `length` token ids of documents, right-padded with 0."""
    token_ids = np.zeros((len(lengths), max(lengths)), np.int32)
    mask = np.zeros_like(token_ids)
    for row, (document, length) in enumerate(
        zip(documents, lengths, strict=False)
    ):
        ids = tokenizer.encode(document).ids[:length]
        assert len(ids) == length, "corpus document too short"
        token_ids[row, :length] = ids
        mask[row, :length] = 1
    return token_ids, mask


def packed_window(tokenizer, documents, end_of_text):
    """`(1, POSITIONS)` ids: documents joined by end-of-text, as in training."""
    ids = []
    for document in documents:
        ids += tokenizer.encode(document).ids + [end_of_text]
        if len(ids) >= POSITIONS:
            return np.array([ids[:POSITIONS]], np.int32)
    raise ValueError(f"the corpus holds fewer than {POSITIONS} tokens")


def main(corpus_path, out_dir):
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    documents = read_corpus(corpus_path)
    tokenizer_dir = os.path.join(out_dir, "tokenizer")
    tokenizer = train_tokenizer(documents, tokenizer_dir)
    end_of_text = tokenizer.token_to_id(END_OF_TEXT)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=POSITIONS,
        n_embd=64,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
    )
    model = TFGPT2LMHeadModel(config)
    model(np.zeros((1, 2), np.int32))
    randomize(model, rng)

    token_ids, mask = padded_batch(tokenizer, documents, LOGIT_LENGTHS)
    logits = model(token_ids, attention_mask=mask).logits.numpy()
    window_ids = packed_window(tokenizer, documents, end_of_text)
    window_logits = model(window_ids).logits.numpy()
    prompts, continuations = padded_batch(
        tokenizer, documents[3:], GREEDY_PROMPT_LENGTHS
    )
    continuations = np.stack(
        [
            model.generate(
                prompt[None, :length],
                attention_mask=np.ones((1, length), np.int32),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                pad_token_id=end_of_text,
                # Never stop early: ours decodes every step.
                eos_token_id=None,
            ).numpy()[0, length:]
            for prompt, length in zip(
                prompts, GREEDY_PROMPT_LENGTHS, strict=True
            )
        ]
    )
    np.savez(
        os.path.join(out_dir, "reference.npz"),
        token_ids=token_ids,
        padding_mask=mask,
        logits=logits,
        window_ids=window_ids,
        window_logits=window_logits,
        prompts=prompts,
        prompt_lengths=np.array(GREEDY_PROMPT_LENGTHS),
        continuations=continuations,
    )
    save_checkpoints(
        model, pytorch_checkpoint_tensors(model), out_dir, tokenizer_dir
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
