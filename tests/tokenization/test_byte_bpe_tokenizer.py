"""ByteBPETokenizer gives the ids of `tokenizers` / GPT2TokenizerFast."""

import random
import shutil

import pytest
import tensorflow as tf
from tokenizers import pre_tokenizers

from textmill.tokenization.bpe_files import (
    export_hf_bpe,
    train_byte_bpe,
    write_bpe_files,
)
from textmill.tokenization.byte_alphabet import (
    byte_to_unicode,
    symbols_to_bytes,
)
from textmill.tokenization.byte_bpe_tokenizer import (
    _UNICODE_16_LETTERS,
    _UNICODE_16_NUMBERS,
    ByteBPETokenizer,
)

ADVERSARIAL = [
    "",
    " ",
    "   ",
    "\t",
    "\n\n\n",
    "  leading spaces",
    "trailing spaces   ",
    "\n\nleading newlines",
    "trailing newlines\n\n",
    "tabs\tand\t\ttabs \t mixed \t\n end",
    "a  b   c    d",
    "a \tb a\t b a\t\tb",
    "  'sa  's 's\t'll",
    "He's here, it'll be; we'd've 'T 'S 'LL don't I'M",
    "''s '''t !!'s ?'re x''ve",
    "naïve café résumé Ångström",
    "e\u0301 a\u0308 combining marks \u0301\u0301",
    "日本語のテキストと中文文本和한국어",
    "emoji 👍🏽👨\u200d👩\u200d👧\u200d👦 🇯🇵 ✨✨",
    "עברית שלום עולם مرحبا بالعالم",
    "\u200f\u200e bidi marks \u202b\u202c",
    "nbsp\u00a0\u00a0x\u00a0 \u00a0y \u00a0",
    "spaces\u2000\u2003\u2009\u200a\u202f\u205f\u3000end\u3000",
    "line\u2028sep\u2029para\x85nel\x0bvt\x0cff\rcr\r\n",
    "zero\u200bwidth\ufeffbom \x1c\x1d not spaces",
    "digits 0123456789 ١٢٣٤٥ ०१२३ ๑๒๓ ①②③ Ⅻ ½ 3.14 1e10 -42",
    "punct !!! ??? ... ,,, ;;; --- ___ *** ### @@@ $$$ %%% ^^^ &&& (((",
    "mixed!?.,;:'\"()[]{}<>/\\|`~ clusters",
    "\x00nul\x00 bytes \x01\x1f\x7f controls\x00",
    "https://example.com/path?q=1&x=y#frag",
    "a" * 60,
    " " * 40 + "x",
    "Unicode 16: \u1c89\U000105c0\U00013460 \U00010d40\U0001e5f1",
]


def ids_of(tokenizer, texts):
    encoded = tf.constant([text.encode("utf-8") for text in texts])
    return tokenizer.tokenize(encoded).to_list()


def mismatches(tokenizer, reference, texts):
    """{text: (our ids, reference ids)} where they differ."""
    ours = ids_of(tokenizer, texts)
    theirs = [encoding.ids for encoding in reference.encode_batch(texts)]
    return {
        text: (got, want)
        for text, got, want in zip(texts, ours, theirs, strict=False)
        if got != want
    }


def test_ids_match_tokenizers_on_corpus(tokenizer, reference, corpus):
    assert not mismatches(tokenizer, reference, corpus)


def test_ids_match_tokenizers_on_adversarial_texts(tokenizer, reference):
    assert not mismatches(tokenizer, reference, ADVERSARIAL)


def test_ids_match_gpt2_tokenizer_fast(tokenizer, hf_files, corpus):
    transformers = pytest.importorskip("transformers")
    vocab_json, merges_txt = hf_files
    fast = transformers.GPT2TokenizerFast(
        vocab_file=vocab_json, merges_file=merges_txt
    )
    # GPT2TokenizerFast registers <|endoftext|> as an added token, which it
    # matches in text; ours reads it as plain text (tested below).
    texts = corpus[:20] + [t for t in ADVERSARIAL if "<|" not in t]
    assert ids_of(tokenizer, texts) == fast(texts)["input_ids"]


def test_special_token_in_text_is_plain_text(tokenizer, reference, bpe_files):
    text = "<|endoftext|> ends<|endoftext|>"
    (ids,) = ids_of(tokenizer, [text])
    assert ids == reference.encode(text).ids
    assert bpe_files.token_id("<|endoftext|>") not in ids
    assert tokenizer.token_to_id("<|endoftext|>").numpy() == 0
    assert tokenizer.vocabulary_size().numpy() == bpe_files.vocab_size()


def test_random_texts_with_repeated_pairs_match_tokenizers(
    tmp_path, reference_for
):
    rng = random.Random(0)

    def text():
        length = rng.randrange(0, 50)
        return "".join(rng.choice("aaab  \n'0é.") for _ in range(length))

    files = train_byte_bpe(
        [text() for _ in range(300)], 400, str(tmp_path / "bpe")
    )
    reference = reference_for(*export_hf_bpe(files, str(tmp_path / "hf")))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    assert not mismatches(tokenizer, reference, [text() for _ in range(300)])


def test_hand_written_vocabulary_matches_tokenizers(tmp_path, reference_for):
    # "z" has no token (skipped, as `tokenizers` skips it), "a a" is merged
    # in overlapping runs, and the pair "a b" is listed twice.
    alphabet = [char for char in byte_to_unicode() if char != "z"]
    tokens = alphabet + ["aa", "aaaa", "ab", "aab", "Ġa"]
    merges = [
        ("a", "b"),
        ("a", "a"),
        ("aa", "aa"),
        ("Ġ", "a"),
        ("a", "ab"),
        ("a", "b"),
    ]
    files = write_bpe_files(tokens, merges, str(tmp_path / "bpe"))
    reference = reference_for(*export_hf_bpe(files, str(tmp_path / "hf")))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    texts = ["aaaaaaa", "aaab zab", "zz", " a aa aaa", "abababaab", "z a z"]
    assert not mismatches(tokenizer, reference, texts)


def test_merges_creating_a_lower_rank_pair_match_tokenizers(
    tmp_path, reference_for
):
    # Merging "a b" creates "ab a", whose rank is lower: `tokenizers` merges
    # it before the next "a b", so a step cannot merge every "a b" at once.
    alphabet = list(byte_to_unicode())
    tokens = alphabet + ["ab", "aba", "abab", "bb"]
    merges = [("ab", "a"), ("a", "b"), ("ab", "ab"), ("b", "b")]
    files = write_bpe_files(tokens, merges, str(tmp_path / "bpe"))
    reference = reference_for(*export_hf_bpe(files, str(tmp_path / "hf")))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    texts = ["ababab", "abab ab abbab", "bbabababbbab", "a" + "ba" * 40]
    assert not mismatches(tokenizer, reference, texts)


def test_long_word_is_merged_in_pieces(bpe_files, reference):
    tokenizer = ByteBPETokenizer(
        bpe_files.vocab_path, bpe_files.merges_path, max_word_bytes=64
    )
    rng = random.Random(1)
    word = "".join(rng.choice("etaoinshrdlu") for _ in range(300))
    pieces = [word[start : start + 64] for start in range(0, 300, 64)]
    want = [i for piece in pieces for i in reference.encode(piece).ids]
    assert ids_of(tokenizer, [word, "short words"]) == [
        want,
        reference.encode("short words").ids,
    ]


def test_max_word_bytes_below_two_is_rejected(bpe_files):
    with pytest.raises(ValueError, match="max_word_bytes is 1"):
        ByteBPETokenizer(
            bpe_files.vocab_path, bpe_files.merges_path, max_word_bytes=1
        )


def space_context_texts(code_points: list[int]) -> list[str]:
    """Each code point next to letters, digits, spaces and a quote."""
    texts = []
    for start in range(0, len(code_points), 2048):
        texts.append(
            "".join(
                f"x{c} {c}{c}1'{c}s\n{c}"
                for c in map(chr, code_points[start : start + 2048])
            )
        )
    return texts


def assert_words_match_tokenizers(code_points: list[int]):
    pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = space_context_texts(code_points)
    ours = ByteBPETokenizer.split_words(
        tf.constant([text.encode("utf-8") for text in texts])
    ).to_list()
    for text, got in zip(texts, ours, strict=False):
        want = [
            symbols_to_bytes(word)
            for word, _ in pre_tokenizer.pre_tokenize_str(text)
        ]
        assert got == want, f"words differ in the block from {text[1]!r}"


def test_words_match_tokenizers_for_every_bmp_code_point():
    bmp = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    unicode_16 = [
        c
        for low, high in _UNICODE_16_LETTERS + _UNICODE_16_NUMBERS
        for c in range(low, high + 1)
    ]
    assert_words_match_tokenizers(bmp + sorted(set(unicode_16) - set(bmp)))


@pytest.mark.slow
def test_words_match_tokenizers_for_every_code_point():
    assert_words_match_tokenizers(
        [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    )


def test_detokenize_round_trips_bytes(tokenizer, corpus):
    texts = [text.encode("utf-8") for text in corpus[:10] + ADVERSARIAL]
    texts += [b"\xff\xfe not utf-8 \xc3(", b"\xe2\x82", b"\x00\x00"]
    ids = tokenizer.tokenize(tf.constant(texts))
    assert tokenizer.detokenize(ids).numpy().tolist() == texts


def test_detokenize_dense_ids(tokenizer):
    texts = [b"Hello world", b"", b"A longer sentence, with commas."]
    ragged = tokenizer.tokenize(tf.constant(texts))
    padded = ragged.to_tensor(default_value=0)
    assert tokenizer.detokenize(padded, padding_id=0).numpy().tolist() == texts
    # Without padding_id every id is decoded; ids outside the vocabulary
    # decode to nothing.
    first = tokenizer.detokenize(padded).numpy()[0]
    missing = padded.shape[1] - len(ragged[0])
    assert first == b"Hello world" + b"<|endoftext|>" * missing
    outside = ragged.to_tensor(default_value=-1)
    assert tokenizer.detokenize(outside).numpy().tolist() == texts


def test_batch_rows_match_single_texts(tokenizer, corpus):
    texts = [corpus[0][:2000], "", "a", corpus[1], "  x  ", ""]
    assert ids_of(tokenizer, texts) == [
        ids_of(tokenizer, [text])[0] for text in texts
    ]


def test_tf_function_matches_eager(tokenizer, corpus):
    texts = tf.constant([text.encode("utf-8") for text in corpus[:5]])
    tokenize = tf.function(
        tokenizer.tokenize,
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    detokenize = tf.function(
        tokenizer.detokenize,
        input_signature=[tf.RaggedTensorSpec([None, None], tf.int64)],
    )
    ids = tokenize(texts)
    assert ids.to_list() == tokenizer.tokenize(texts).to_list()
    assert detokenize(ids).numpy().tolist() == texts.numpy().tolist()


def test_tf1_graph_with_path_tensors(bpe_files, reference):
    texts = ["Hello world, it's 42!", "", "  naïve\tcafé  "]
    with tf.Graph().as_default():
        vocab = tf.compat.v1.placeholder_with_default(bpe_files.vocab_path, [])
        merges = tf.compat.v1.placeholder_with_default(
            bpe_files.merges_path, []
        )
        tokenizer = ByteBPETokenizer(vocab, merges)
        batch = tf.compat.v1.placeholder(tf.string, [None])
        ids = tokenizer.tokenize(batch)
        decoded = tokenizer.detokenize(ids)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.tables_initializer())
            ids_value, decoded_value = session.run(
                [ids, decoded], {batch: texts}
            )
    assert ids_value.to_list() == [
        encoding.ids for encoding in reference.encode_batch(texts)
    ]
    assert decoded_value.tolist() == [text.encode("utf-8") for text in texts]


class TokenizerModule(tf.Module):
    def __init__(self, vocab_path: str, merges_path: str):
        super().__init__()
        self.tokenizer = ByteBPETokenizer(
            tf.saved_model.Asset(vocab_path), tf.saved_model.Asset(merges_path)
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return self.tokenizer.tokenize(texts)

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.int64)])
    def detokenize(self, ids):
        return self.tokenizer.detokenize(ids)


def test_saved_model_with_asset_files_reloads(bpe_files, reference, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    vocab = shutil.copy(bpe_files.vocab_path, source / "vocab.txt")
    merges = shutil.copy(bpe_files.merges_path, source / "merges.txt")
    export_dir = str(tmp_path / "model")
    tf.saved_model.save(TokenizerModule(str(vocab), str(merges)), export_dir)
    shutil.rmtree(source)
    assert sorted(tf.io.gfile.listdir(f"{export_dir}/assets")) == [
        "merges.txt",
        "vocab.txt",
    ]

    loaded = tf.saved_model.load(export_dir)
    texts = ["Saved and reloaded.", "", "  it's ٣ 日本  "]
    ids = loaded.tokenize(tf.constant(texts))
    assert ids.to_list() == [
        encoding.ids for encoding in reference.encode_batch(texts)
    ]
    assert loaded.detokenize(ids).numpy().tolist() == [
        text.encode("utf-8") for text in texts
    ]


def test_tokenize_rejects_a_matrix(tokenizer):
    with pytest.raises(ValueError, match="1-D batch"):
        tokenizer.tokenize(tf.constant([["a", "b"]]))
