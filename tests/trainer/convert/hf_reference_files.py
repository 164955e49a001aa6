"""What the GPT-2 and BART reference scripts share (they run under
tf-keras in a process of their own): the corpus they read, a byte-level
BPE trained on it, and the checkpoint written both as `save_pretrained`
(TF names) and as a PyTorch-named `model.safetensors`."""

import gzip
import json
import os
import shutil

from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

TOKENIZER_FILES = ("vocab.json", "merges.txt")


def read_corpus(path):
    """The `text` of every JSON Lines record (optionally gzipped)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def train_byte_level_bpe(documents, vocab_size, special_tokens):
    """A byte-level BPE (no prefix space, all 256 bytes) on documents."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    return tokenizer


def save_checkpoints(model, tensors, out_dir, tokenizer_dir):
    """Writes `out_dir/h5` (`save_pretrained`) and `out_dir/safetensors`
    (`tensors` as `model.safetensors` beside the config), each with the
    tokenizer files."""
    model.save_pretrained(os.path.join(out_dir, "h5"))
    safetensors_dir = os.path.join(out_dir, "safetensors")
    os.makedirs(safetensors_dir)
    model.config.save_pretrained(safetensors_dir)
    save_file(
        tensors,
        os.path.join(safetensors_dir, "model.safetensors"),
        metadata={"format": "pt"},
    )
    for checkpoint in ("h5", "safetensors"):
        for name in TOKENIZER_FILES:
            shutil.copy(
                os.path.join(tokenizer_dir, name),
                os.path.join(out_dir, checkpoint, name),
            )
