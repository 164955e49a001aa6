"""Line-format BPE files: training, Hugging Face import and export."""

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from textmill.tokenization.bpe_files import (
    BpeFiles,
    count_words,
    export_hf_bpe,
    import_hf_bpe,
    texts_from_word_counts,
    train_byte_bpe,
)
from textmill.tokenization.byte_alphabet import byte_to_unicode


def read_bytes(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def test_train_writes_line_format(bpe_files, corpus):
    tokens = bpe_files.read_vocab()
    assert tokens[0] == "<|endoftext|>"
    assert sorted(tokens[1:257]) == sorted(byte_to_unicode())
    assert bpe_files.vocab_size() == len(tokens) == 2000
    assert len(set(tokens)) == len(tokens)
    merges = bpe_files.read_merges()
    assert len(merges) == len(tokens) - 257
    # Each merge adds the token of the same rank, after the byte tokens.
    assert [left + right for left, right in merges] == tokens[257:]
    assert not read_bytes(bpe_files.merges_path).startswith(b"#")
    assert bpe_files.token_id("Ġthe") == tokens.index("Ġthe")
    with pytest.raises(KeyError, match="not in"):
        bpe_files.token_id("<pad>")


def test_hf_export_loads_in_tokenizers_and_imports_back(
    bpe_files, hf_files, tmp_path
):
    vocab_json, merges_txt = hf_files
    model = models.BPE.from_file(vocab_json, merges_txt)
    assert model.token_to_id("Ġthe") == bpe_files.token_id("Ġthe")
    assert read_bytes(merges_txt).startswith(b"#version: 0.2\n")
    imported = import_hf_bpe(vocab_json, merges_txt, str(tmp_path))
    assert read_bytes(imported.vocab_path) == read_bytes(bpe_files.vocab_path)
    assert read_bytes(imported.merges_path) == read_bytes(bpe_files.merges_path)


def test_import_reads_tokenizers_files(tmp_path, corpus):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        corpus[:10],
        trainers.BpeTrainer(vocab_size=400, show_progress=False),
    )
    vocab_json, merges_txt = tokenizer.model.save(str(tmp_path))
    files = import_hf_bpe(vocab_json, merges_txt, str(tmp_path / "line"))
    vocab = tokenizer.get_vocab()
    assert files.read_vocab() == sorted(vocab, key=vocab.get)
    assert len(files.read_merges()) == len(
        read_bytes(merges_txt).decode().splitlines()[1:]
    )


def test_export_refuses_to_overwrite_line_merges(bpe_files):
    out_dir = bpe_files.merges_path.rsplit("/", 1)[0]
    with pytest.raises(ValueError, match="would overwrite"):
        export_hf_bpe(bpe_files, out_dir)


@pytest.mark.parametrize(
    "vocab, message",
    [
        ({"a": 0, "b": 2, "ab": 3}, "id 1 is missing"),
        ({"a": 0, "b": 0}, "share id 0"),
        ({"a": "0"}, "integer id"),
        (["a", "b"], "JSON object"),
        ({"a": 0, "": 1}, "non-empty"),
    ],
)
def test_import_rejects_a_bad_vocab_json(tmp_path, vocab, message):
    vocab_json = tmp_path / "vocab.json"
    vocab_json.write_text(json.dumps(vocab))
    merges_txt = tmp_path / "merges.txt"
    merges_txt.write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match=message):
        import_hf_bpe(str(vocab_json), str(merges_txt), str(tmp_path / "out"))


def test_import_rejects_invalid_json(tmp_path):
    vocab_json = tmp_path / "vocab.json"
    vocab_json.write_text("{not json")
    (tmp_path / "merges.txt").write_text("")
    with pytest.raises(ValueError, match="not valid JSON"):
        import_hf_bpe(
            str(vocab_json), str(tmp_path / "merges.txt"), str(tmp_path)
        )


@pytest.mark.parametrize(
    "merges, message",
    [
        ("a b c\n", "line 2 is 'a b c'"),
        ("a x\n", "needs token 'x'"),
        ("b a\n", "needs token 'ba'"),
    ],
)
def test_import_rejects_bad_merges(tmp_path, merges, message):
    vocab_json = tmp_path / "vocab.json"
    vocab_json.write_text(json.dumps({"a": 0, "b": 1, "ab": 2}))
    merges_txt = tmp_path / "merges.txt"
    merges_txt.write_text("#version: 0.2\n" + merges)
    with pytest.raises(ValueError, match=message):
        import_hf_bpe(str(vocab_json), str(merges_txt), str(tmp_path / "out"))


def test_training_from_word_counts_equals_training_on_texts(tmp_path, corpus):
    texts = corpus[:30] + [
        "  indented\n\t\tcode   \n\n\n",
        "It's 'T 'll  's 12\u0663 \u00a0\u00a0x!!'s",
        "trailing   ",
    ]
    direct = train_byte_bpe(texts, 800, str(tmp_path / "direct"))
    counts = count_words(texts)
    assert counts[" the"] > 10
    counted = train_byte_bpe(
        texts_from_word_counts(counts), 800, str(tmp_path / "counted")
    )
    assert read_bytes(counted.vocab_path) == read_bytes(direct.vocab_path)
    assert read_bytes(counted.merges_path) == read_bytes(direct.merges_path)


def test_word_count_texts_are_compact():
    texts = list(texts_from_word_counts({" the": 5000, "  ": 3, "x": 9}))
    # " the" in 5 texts of up to 1024 repeats, each whitespace run alone,
    # one-byte words not at all.
    assert len(texts) == 5 + 3
    assert count_words(texts)[" the"] == 5000
    assert count_words(texts)["  "] == 3


def test_train_rejects_a_vocabulary_without_room_for_bytes(tmp_path):
    with pytest.raises(ValueError, match="at least 257"):
        train_byte_bpe(["text"], 100, str(tmp_path))


def test_bpe_files_is_frozen(bpe_files):
    with pytest.raises(AttributeError):
        bpe_files.vocab_path = "elsewhere"
    assert BpeFiles(bpe_files.vocab_path, bpe_files.merges_path) == bpe_files
