"""Shared fixtures: a small real corpus and a byte-level BPE trained on it."""

import ast
import os
import sysconfig

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from textmill.tokenization.bpe_files import export_hf_bpe, train_byte_bpe
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

NUM_MODULES = 100
VOCAB_SIZE = 2000


def module_docstrings(path: str) -> str:
    """A module's docstrings (module, classes, functions), one document."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    definitions = (ast.Module, ast.ClassDef, ast.FunctionDef)
    docstrings = [
        ast.get_docstring(node)
        for node in ast.walk(tree)
        if isinstance(node, definitions)
    ]
    return "\n\n".join(text for text in docstrings if text)


def hf_reference(vocab_json: str, merges_txt: str) -> Tokenizer:
    """The `tokenizers` library's GPT-2 byte-level BPE over HF files."""
    tokenizer = Tokenizer(models.BPE.from_file(vocab_json, merges_txt))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    """Docstrings of the first stdlib modules, one document per module."""
    stdlib = sysconfig.get_paths()["stdlib"]
    names = sorted(name for name in os.listdir(stdlib) if name.endswith(".py"))
    documents = [
        module_docstrings(os.path.join(stdlib, name)) for name in names
    ]
    return [text for text in documents if text][:NUM_MODULES]


@pytest.fixture(scope="session")
def bpe_files(corpus, tmp_path_factory):
    return train_byte_bpe(
        corpus, VOCAB_SIZE, str(tmp_path_factory.mktemp("bpe"))
    )


@pytest.fixture(scope="session")
def hf_files(bpe_files, tmp_path_factory):
    return export_hf_bpe(bpe_files, str(tmp_path_factory.mktemp("hf")))


@pytest.fixture(scope="session")
def reference(hf_files) -> Tokenizer:
    return hf_reference(*hf_files)


@pytest.fixture(scope="session")
def reference_for():
    """Builds the `tokenizers` reference for other HF files."""
    return hf_reference


@pytest.fixture(scope="session")
def tokenizer(bpe_files) -> ByteBPETokenizer:
    return ByteBPETokenizer(bpe_files.vocab_path, bpe_files.merges_path)
