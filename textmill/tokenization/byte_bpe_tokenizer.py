"""GPT-2 style byte-level BPE that runs in a TensorFlow graph.

The tokenizer is built only from static lookup tables initialised from the
line-format files (`bpe_files`), so it works where keras-hub's tokenizer does
not: inside a TensorFlow Transform `preprocessing_fn` whose vocabulary is an
analyzer output, in TF1 graphs, in `tf.function`s and in SavedModels, where
the files travel as assets. It gives exactly the ids of the `tokenizers`
library (and `transformers.GPT2TokenizerFast`) for the same files.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
import tensorflow_text as tf_text

from textmill.tokenization.byte_alphabet import byte_to_unicode

# What GPT-2's regex (Oniguruma / Python `regex`) calls whitespace, `\s`:
# \t \n \v \f \r, U+0085 and the separators (Zs, Zl, Zp). RE2's own `\s` is
# ASCII only.
_SPACE_RANGES = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
# Letters and numbers of Unicode 16.0, which the `tokenizers` library's
# regex engine knows and the RE2 of TensorFlow 2.16 does not yet (found by
# comparing the two on every code point).
_UNICODE_16_LETTERS = (
    (0x1C89, 0x1C8A),
    (0xA7CB, 0xA7CD),
    (0xA7DA, 0xA7DC),
    (0x105C0, 0x105F3),
    (0x10D4A, 0x10D65),
    (0x10D6F, 0x10D85),
    (0x10EC2, 0x10EC4),
    (0x11380, 0x11389),
    (0x1138B, 0x1138B),
    (0x1138E, 0x1138E),
    (0x11390, 0x113B5),
    (0x113B7, 0x113B7),
    (0x113D1, 0x113D1),
    (0x113D3, 0x113D3),
    (0x11BC0, 0x11BE0),
    (0x13460, 0x143FA),
    (0x16100, 0x1611D),
    (0x16D40, 0x16D6C),
    (0x18CFF, 0x18CFF),
    (0x1E5D0, 0x1E5ED),
    (0x1E5F0, 0x1E5F0),
    (0x2EBF0, 0x2EE5D),
)
_UNICODE_16_NUMBERS = (
    (0x10D40, 0x10D49),
    (0x116D0, 0x116E3),
    (0x11BF0, 0x11BF9),
    (0x16130, 0x16139),
    (0x16D70, 0x16D79),
    (0x1CCF0, 0x1CCF9),
    (0x1E5F1, 0x1E5FA),
)


def _class_ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(rf"\x{{{low:X}}}-\x{{{high:X}}}" for low, high in ranges)


_SPACE_CLASS = _class_ranges(_SPACE_RANGES)
_LETTER_CLASS = r"\p{L}" + _class_ranges(_UNICODE_16_LETTERS)
_NUMBER_CLASS = r"\p{N}" + _class_ranges(_UNICODE_16_NUMBERS)
# GPT-2's pre-tokenizer regex is
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# RE2 has no lookahead, so whitespace is matched one character at a time and
# `split_words` rebuilds GPT-2's whitespace words from those pieces. Every
# other alternative is GPT-2's, tried in the same order, so a space that
# ends a whitespace run still attaches to the word after it (" '", "s" for
# " 's").
_PIECE_PATTERN = (
    r"'s|'t|'re|'ve|'m|'ll|'d"
    rf"| ?[{_LETTER_CLASS}]+"
    rf"| ?[{_NUMBER_CLASS}]+"
    rf"| ?[^{_SPACE_CLASS}{_LETTER_CLASS}{_NUMBER_CLASS}]+"
    rf"|[{_SPACE_CLASS}]"
)
# Pairs and merge-table entries pack two int32 values into one int64.
_SHIFT = 2**32
_NO_MERGE = tf.int64.max
# Words (pre-tokens) longer than this many bytes are merged in pieces of this
# many bytes. A word costs one merge-loop step per merge rank it uses, so one
# very long word (e.g. 100 KB of letters without a space) would hold a
# server's or Transform's worker for minutes; ids differ from `tokenizers`
# only inside such words, at the piece boundaries.
MAX_WORD_BYTES = 1024


class ByteBPETokenizer(tf.Module):
    """Byte-level BPE tokenizer (GPT-2, RoBERTa) made of static tables.

    Tokenization is GPT-2's: the text is split into words by GPT-2's regex
    (rebuilt for RE2, which has no lookahead; see `split_words`), each
    word's UTF-8 bytes become byte tokens, and within each word the adjacent
    pair with the lowest merge rank (the leftmost among equals) is merged
    until no pair has a merge, exactly as the `tokenizers` library does. The
    merge loop is one `tf.while_loop` over the distinct words of the batch;
    each step merges, in every word, each occurrence of its lowest-rank pair
    (see `_merge_positions`), and a word leaves the loop as soon as it has
    nothing left to merge. A word longer than `max_word_bytes` (1024 by
    default) is merged in pieces of that many bytes, which bounds the steps
    one pathological word costs (a 30 KB run of letters); only such words
    can get ids that differ from the library's.

    Special tokens such as `<|endoftext|>` get no special treatment in the
    input text: they are tokenized as plain text, as the `tokenizers`
    library does when the special token is not registered as an added token
    (`GPT2TokenizerFast` registers it, and matches it in text). Append their
    ids (`token_to_id`) instead.

    The tables come only from the files: a token -> id and an id -> token
    table read by `tf.lookup.TextFileInitializer`, and a byte table and a
    merge table whose entries are parsed from the files by graph ops
    (`KeyValueTensorInitializer`). Built eagerly, or lifted out of the
    `tf.function` being traced when the paths' values are known (strings,
    eager tensors, constants: TensorFlow Transform lifts its vocabulary
    tables the same way), each table is initialised once; a SavedModel then
    keeps the byte and merge tables as constants and reads the vocabulary
    from its asset. Paths only known when the graph runs (TF1 placeholders)
    give tables initialised by the graph's table initializers.

    Args:
        vocabulary: `vocab.txt` in line format (one token per line): a path,
            a scalar string tensor (e.g. an analyzer output) or a
            `tf.saved_model.Asset`.
        merges: `merges.txt` in line format (one `left right` per line), in
            any of the same forms.
        name: the module name.
        max_word_bytes: the longest word merged as one piece; longer words
            are merged in pieces of this many bytes.

    Call arguments:
        tokenize(texts): a 1-D string tensor of documents. Returns token
            ids, a `tf.RaggedTensor` of int64 with shape `[batch, None]`.
            Bytes that are not UTF-8 (which `tokenizers` cannot take) are
            kept, in the word that follows them.
        detokenize(ids, padding_id=None): ids as a ragged or dense 2-D int
            tensor. Returns the exact bytes of each sequence, a 1-D string
            tensor; decode them with `errors="replace"` to get the string
            the `tokenizers` library gives.

    Example:

    >>> tokenizer = ByteBPETokenizer("bpe/vocab.txt", "bpe/merges.txt")
    >>> ids = tokenizer.tokenize(tf.constant(["Hello world", "Hi"]))
    >>> tokenizer.detokenize(ids)
    <tf.Tensor: shape=(2,), dtype=string, numpy=array([b'Hello world', b'Hi'])>
    """

    def __init__(
        self,
        vocabulary,
        merges,
        name: str | None = None,
        max_word_bytes: int = MAX_WORD_BYTES,
    ):
        super().__init__(name=name)
        if max_word_bytes < 2:
            raise ValueError(
                f"max_word_bytes is {max_word_bytes}; pass at least 2 (the "
                f"default, {MAX_WORD_BYTES}, keeps the ids of `tokenizers`)."
            )
        self.max_word_bytes = int(max_word_bytes)
        self.vocabulary = vocabulary
        self.merges = merges
        paths = [_path_of(vocabulary), _path_of(merges)]
        # Graph tensors the outputs must depend on (see `_after_files`).
        self._file_dependencies = []
        with contextlib.ExitStack() as stack:
            known = [_known_path(path) for path in paths]
            if tf.inside_function() and None not in known:
                # Build and initialise the tables once, outside the function
                # being traced, from the paths' known values.
                stack.enter_context(tf.init_scope())
                self._file_dependencies = [
                    path for path in paths if tf.is_symbolic_tensor(path)
                ]
                paths = known
            vocab_path, merges_path = paths
            self._token_to_id = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    vocab_path,
                    tf.string,
                    tf.lookup.TextFileIndex.WHOLE_LINE,
                    tf.int64,
                    tf.lookup.TextFileIndex.LINE_NUMBER,
                ),
                default_value=-1,
            )
            self._id_to_token = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    vocab_path,
                    tf.int64,
                    tf.lookup.TextFileIndex.LINE_NUMBER,
                    tf.string,
                    tf.lookup.TextFileIndex.WHOLE_LINE,
                ),
                default_value="",
            )
            byte_keys, byte_ids, merge_keys, merge_values = _table_entries(
                vocab_path, merges_path
            )
            self._byte_to_id = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(byte_keys, byte_ids),
                default_value=-1,
            )
            self._merge_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(merge_keys, merge_values),
                default_value=-1,
            )

    def vocabulary_size(self) -> tf.Tensor:
        """Returns the number of tokens.

        Returns:
            An int64 scalar tensor.
        """
        return self._after_files(self._id_to_token.size())

    def token_to_id(self, tokens) -> tf.Tensor:
        """Looks up the ids of vocabulary tokens, e.g. `<|endoftext|>`.

        Args:
            tokens: a string tensor of tokens, as written in `vocab.txt`.

        Returns:
            An int64 tensor of the same shape; -1 for unknown tokens.
        """
        return self._after_files(
            self._token_to_id.lookup(tf.convert_to_tensor(tokens, tf.string))
        )

    # The graph code has no Python control flow for AutoGraph to convert;
    # skipping the conversion makes tracing several times faster.
    @tf.autograph.experimental.do_not_convert
    def tokenize(self, texts) -> tf.RaggedTensor:
        """Tokenizes a batch of texts.

        Args:
            texts: a 1-D string tensor.

        Returns:
            The token ids, an int64 `tf.RaggedTensor` `[batch, None]`.

        Raises:
            ValueError: if `texts` is not 1-D.
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank != 1:
            raise ValueError(
                f"texts has shape {texts.shape}; pass a 1-D batch of strings "
                "(wrap a single string in a list)."
            )
        words = self.split_words(texts)  # [batch, (words)]
        distinct, word_index = tf.unique(words.flat_values, out_idx=tf.int64)
        tokens = tf.gather(self._merge_words(distinct), word_index)
        # [batch, (words), (tokens)] -> [batch, (tokens)]
        return self._after_files(
            tf.RaggedTensor.from_row_splits(
                tokens.flat_values,
                tf.gather(tokens.row_splits, words.row_splits),
            )
        )

    @tf.autograph.experimental.do_not_convert
    def detokenize(self, ids, padding_id: int | None = None) -> tf.Tensor:
        """Turns id sequences back into text bytes.

        Args:
            ids: a 2-D int tensor, ragged or dense.
            padding_id: with dense `ids`, the id that pads the sequences
                (wherever it occurs); those entries are dropped. Without it
                every entry of a dense tensor is decoded.

        Returns:
            The bytes of each sequence, a 1-D string tensor; ids outside the
            vocabulary add nothing.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
            if padding_id is None:
                ids = tf.RaggedTensor.from_tensor(ids)
            else:
                ids = tf.ragged.boolean_mask(
                    ids, tf.not_equal(ids, tf.cast(padding_id, ids.dtype))
                )
        tokens = self._id_to_token.lookup(tf.cast(ids, tf.int64))
        # A token made of byte-alphabet characters stands for those bytes;
        # any other token (e.g. an imported special token with characters
        # outside the alphabet) for its own UTF-8 bytes.
        flat_tokens = tokens.flat_values
        chars = tf.strings.unicode_decode(flat_tokens, "UTF-8")
        alphabet_bytes = tf.gather(
            _char_to_byte(), tf.minimum(chars.flat_values, _char_limit() - 1)
        )
        in_alphabet = (chars.flat_values < _char_limit()) & (
            alphabet_bytes >= 0
        )
        token_bytes = tf.strings.reduce_join(
            chars.with_flat_values(
                tf.gather(_single_bytes(), tf.maximum(alphabet_bytes, 0))
            ),
            axis=-1,
        )
        all_in_alphabet = tf.reduce_all(
            chars.with_flat_values(in_alphabet), axis=-1
        )
        token_bytes = tf.where(all_in_alphabet, token_bytes, flat_tokens)
        return self._after_files(
            tf.strings.reduce_join(
                tokens.with_flat_values(token_bytes), axis=-1
            )
        )

    def _after_files(self, outputs):
        """Makes `outputs` depend on the graph tensors naming the files.

        Tables built from a path tensor's known value no longer depend on
        that tensor; TensorFlow Transform needs the dependency to know that
        the outputs wait for the analyzer that writes the files.
        """
        if not self._file_dependencies:
            return outputs
        # Depend on the tensors (through identities), not just on the ops
        # that make them: the analyzers' outputs are tracked as tensors.
        with tf.control_dependencies(
            [tf.identity(path) for path in self._file_dependencies]
        ):
            return tf.nest.map_structure(
                tf.identity, outputs, expand_composites=True
            )

    @staticmethod
    @tf.autograph.experimental.do_not_convert
    def split_words(texts: tf.Tensor) -> tf.RaggedTensor:
        """Splits texts into GPT-2's pre-tokenizer words.

        Args:
            texts: a 1-D string tensor.

        Returns:
            The words of each text (plain bytes, e.g. `b" world"`), a
            `tf.RaggedTensor` of strings with shape `[batch, None]`.
        """
        # Each regex match is marked by a NUL byte after it (a regex replace
        # is much faster than tf_text.regex_split). NUL bytes of the text
        # become \x01, a byte of the same class, for the scan; the words are
        # then cut from the original texts by offset.
        marked = tf.strings.regex_replace(
            tf.strings.regex_replace(texts, r"\x00", "\x01"),
            _PIECE_PATTERN,
            "\\0\x00",
        )
        pieces = tf.strings.split(marked, "\x00")
        # Drop the empty string after each text's last mark.
        pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)
        flat = pieces.flat_values
        rows = pieces.value_rowids()
        piece_ends = tf.cumsum(tf.cast(tf.strings.length(flat), tf.int64))
        # [0, end of piece 0, end of piece 1, ...]: where each piece begins.
        piece_starts = tf.concat([[0], piece_ends], 0)
        text_start = tf.gather(piece_starts, pieces.row_starts())
        begins = piece_starts[:-1] - tf.gather(text_start, rows)
        ends = piece_ends - tf.gather(text_start, rows)
        index = tf.range(tf.size(flat, out_type=tf.int64))
        first_in_row = tf.equal(index, tf.gather(pieces.row_starts(), rows))
        last_in_row = tf.equal(index + 1, tf.gather(pieces.row_limits(), rows))
        chars = tf.strings.unicode_decode(flat, "UTF-8", errors="replace")
        first_char = tf.gather(chars.flat_values, chars.row_starts())
        space = tf.equal(chars.row_lengths(), 1) & _in_ranges(
            first_char, _SPACE_RANGES
        )
        # A piece that is neither whitespace nor starts with a space.
        bare_word = tf.logical_not(space) & tf.not_equal(first_char, ord(" "))
        after_space = _previous(space) & tf.logical_not(first_in_row)
        before_bare_word = _next(bare_word) & tf.logical_not(last_in_row)
        # GPT-2 splits a whitespace run before its last character when a word
        # follows (`\s+(?!\S)`): a space there is already part of that word's
        # piece; any other character there is a word of its own. The rest of
        # the run is one word, and so is a run that ends the text.
        starts_word = (
            tf.logical_not(space)
            | tf.logical_not(after_space)
            | before_bare_word
        )
        ends_word = _next(starts_word) | last_in_row

        def word_offsets(offsets, at):
            return tf.RaggedTensor.from_value_rowids(
                tf.cast(tf.boolean_mask(offsets, at), tf.int32),
                tf.boolean_mask(rows, at),
                nrows=pieces.nrows(),
            )

        return tf_text.ByteSplitter().split_by_offsets(
            texts,
            word_offsets(begins, starts_word),
            word_offsets(ends, ends_word),
        )

    def _merge_words(self, words: tf.Tensor) -> tf.RaggedTensor:
        """BPE-merges each of `words` (1-D strings) into token ids."""
        num_words = tf.size(words, out_type=tf.int64)
        byte_values = tf.strings.unicode_decode(words, "ISO-8859-1")
        symbol_ids = self._byte_to_id.lookup(
            tf.cast(byte_values.flat_values, tf.int64)
        )
        # A byte without a token is skipped, as `tokenizers` does when the
        # model has no unknown token.
        known = symbol_ids >= 0
        symbols = tf.boolean_mask(symbol_ids, known)
        # A word longer than `max_word_bytes` is merged in pieces of that
        # many bytes (`pieces` of them, `piece_word` their words).
        rows = byte_values.value_rowids()
        piece_bytes = tf.constant(self.max_word_bytes, tf.int64)
        pieces_per_word = -(-byte_values.row_lengths() // piece_bytes)
        first_piece = tf.cumsum(pieces_per_word, exclusive=True)
        piece = (
            tf.gather(first_piece, rows)
            + (
                tf.range(tf.size(rows, out_type=tf.int64))
                - tf.gather(byte_values.row_starts(), rows)
            )
            // piece_bytes
        )
        piece_word = tf.repeat(tf.range(num_words), pieces_per_word)
        # The loop works on the symbols of the "active" pieces only: `owner`
        # maps each symbol to its active piece and `active` each active
        # piece to its index in `piece_word`. A piece without a merge leaves
        # the loop.
        owner = tf.boolean_mask(piece, known)
        active = tf.range(tf.size(piece_word, out_type=tf.int64))
        # Item 0 is empty, so that the arrays can be concatenated even when
        # the loop does not run (an eager TensorArray cannot concat nothing).
        finished_symbols, finished_owners = (
            tf.TensorArray(
                tf.int64,
                size=1,
                dynamic_size=True,
                infer_shape=False,
                element_shape=tf.TensorShape([None]),
            ).write(0, tf.zeros([0], tf.int64))
            for _ in range(2)
        )

        def has_symbols(step, symbols, owner, active, done, done_owner):
            del step, owner, active, done, done_owner
            return tf.size(symbols) > 0

        def merge_once(step, symbols, owner, active, done, done_owner):
            # Rank and product of each adjacent pair: rank * 2^32 + new id.
            packed = self._merge_table.lookup(
                symbols[:-1] * _SHIFT + symbols[1:]
            )
            mergeable = tf.equal(owner[:-1], owner[1:]) & (packed >= 0)
            num_active = tf.size(active, out_type=tf.int64)
            left, merging = _merge_positions(
                self._merge_table, symbols, owner, packed, mergeable, num_active
            )
            finished = tf.logical_not(tf.gather(merging, owner))
            done = done.write(step, tf.boolean_mask(symbols, finished))
            done_owner = done_owner.write(
                step, tf.boolean_mask(tf.gather(active, owner), finished)
            )
            symbols = tf.tensor_scatter_nd_update(
                symbols, left[:, None], tf.gather(packed, left) % _SHIFT
            )
            keep = tf.tensor_scatter_nd_update(
                tf.logical_not(finished),
                left[:, None] + 1,
                tf.zeros_like(left, tf.bool),
            )
            renumber = tf.cumsum(tf.cast(merging, tf.int64)) - 1
            return (
                step + 1,
                tf.boolean_mask(symbols, keep),
                tf.gather(renumber, tf.boolean_mask(owner, keep)),
                tf.boolean_mask(active, merging),
                done,
                done_owner,
            )

        _, _, _, _, finished_symbols, finished_owners = tf.while_loop(
            has_symbols,
            merge_once,
            (1, symbols, owner, active, finished_symbols, finished_owners),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None]),
                tf.TensorShape([None]),
                tf.TensorShape([None]),
                tf.TensorShape(None),
                tf.TensorShape(None),
            ),
        )
        symbols = finished_symbols.concat()
        owner = finished_owners.concat()
        # Pieces left the loop in any order; a stable sort by piece keeps
        # each piece's symbols in order, and a word's pieces are in order.
        order = tf.argsort(owner, stable=True)
        return tf.RaggedTensor.from_value_rowids(
            tf.gather(symbols, order),
            tf.gather(piece_word, tf.gather(owner, order)),
            nrows=num_words,
        )


def _merge_positions(merge_table, symbols, owner, packed, mergeable, num_words):
    """Picks the pairs one merge step merges, as `tokenizers` would.

    `tokenizers` merges one pair at a time: the lowest rank, then the
    leftmost. Merging one pair at a time costs one loop step per merge, so a
    long word costs O(length^2). This step instead merges, in each word,
    every occurrence of the word's lowest-rank pair (left to right, without
    overlap: `a a a` gives `aa a`), which is what the one-at-a-time order
    does as long as none of the pairs those merges create ranks lower (a
    merges file learned by BPE never has such a pair: a merge is learned
    after the tokens it joins). Where one does, the word merges only its
    leftmost pair this step, so the ids are exactly the library's for any
    merges file.

    Args:
        merge_table: pair (`left * 2^32 + right`) -> `rank * 2^32 + id`.
        symbols: the symbol ids of the active words, concatenated.
        owner: the active word of each symbol.
        packed: the merge-table value of each adjacent pair (-1: none).
        mergeable: whether each adjacent pair merges (same word, has a rank).
        num_words: the number of active words.

    Returns:
        `(left, merging)`: the positions of the pairs to merge (their left
        symbols), and whether each active word merges anything.
    """
    pair_owner = owner[:-1]
    position = tf.range(tf.size(packed, out_type=tf.int64))
    rank = packed // _SHIFT
    # Lowest rank first, then leftmost: rank * 2^32 + position.
    score = tf.where(mergeable, rank * _SHIFT + position, _NO_MERGE)
    best = tf.math.unsorted_segment_min(score, pair_owner, num_words)
    merging = best < _NO_MERGE
    best_rank = tf.gather(best // _SHIFT, pair_owner)
    candidate = mergeable & tf.equal(rank, best_rank)
    # Candidates next to each other are one run of the same symbol (`a a`
    # then `a a`); every other one of a run merges, from its start.
    run_start = candidate & tf.logical_not(_previous(candidate))
    run_index = tf.maximum(tf.cumsum(tf.cast(run_start, tf.int64)) - 1, 0)
    start_position = tf.gather(
        tf.concat([tf.boolean_mask(position, run_start), [0]], 0), run_index
    )
    chosen = candidate & tf.equal((position - start_position) % 2, 0)
    merged = packed % _SHIFT
    # The pairs each merge creates, in the one-at-a-time order: on the left
    # with the symbol before (itself merged if the pair before was chosen),
    # on the right with the symbol after as it is now.
    num_pairs = tf.size(packed)
    before = tf.concat([[-1], symbols], 0)[:num_pairs]
    before_owner = tf.concat([[-1], owner], 0)[:num_pairs]
    previous_chosen = tf.concat([[False, False], chosen], 0)[:num_pairs]
    previous_merged = tf.concat([[0, 0], merged], 0)[:num_pairs]
    before = tf.where(previous_chosen, previous_merged, before)
    after = tf.concat([symbols[2:], [-1]], 0)[:num_pairs]
    after_owner = tf.concat([owner[2:], [-1]], 0)[:num_pairs]
    left_rank = merge_table.lookup(before * _SHIFT + merged) // _SHIFT
    right_rank = merge_table.lookup(merged * _SHIFT + after) // _SHIFT
    early = (
        tf.equal(before_owner, pair_owner)
        & (left_rank >= 0)
        & (left_rank <= best_rank)
    ) | (
        tf.equal(after_owner, pair_owner)
        & (right_rank >= 0)
        & (right_rank <= best_rank)
    )
    one_only = tf.gather(
        tf.math.unsorted_segment_max(
            tf.cast(chosen & early, tf.int32), pair_owner, num_words
        )
        > 0,
        pair_owner,
    )
    leftmost = tf.equal(position, tf.gather(best % _SHIFT, pair_owner))
    chosen = tf.where(one_only, leftmost & candidate, chosen)
    return tf.boolean_mask(position, chosen), merging


def _table_entries(vocab_path, merges_path):
    """Parses the files into byte-table and merge-table keys and values.

    Returns:
        `(byte_keys, byte_ids, merge_keys, merge_values)`: each byte value
        with a token and that token's id; each merge pair
        `left_id * 2^32 + right_id` and its `rank * 2^32 + merged_id`.
        Merges naming a missing token are dropped; when a pair appears twice
        the later rank counts, as in the `tokenizers` library.
    """
    vocab = _lines(tf.io.read_file(vocab_path))
    merge_lines = _lines(tf.io.read_file(merges_path))
    parts = tf.strings.split(merge_lines, " ")
    well_formed = tf.equal(parts.row_lengths(), 2)
    ranks = tf.boolean_mask(
        tf.range(tf.size(merge_lines, out_type=tf.int64)), well_formed
    )
    pairs = tf.ragged.boolean_mask(parts, well_formed).to_tensor(
        shape=[None, 2]
    )
    lefts, rights = pairs[:, 0], pairs[:, 1]
    # Each name's id is its first line in the vocabulary (vocab_size when
    # it has none), found by a unique over the vocabulary and all names.
    vocab_size = tf.size(vocab, out_type=tf.int64)
    names = tf.concat(
        [
            vocab,
            tf.constant(byte_to_unicode()),
            lefts,
            rights,
            tf.strings.join([lefts, rights]),
        ],
        0,
    )
    distinct, name_index = tf.unique(names, out_idx=tf.int64)
    first_line = tf.minimum(
        tf.math.unsorted_segment_min(
            tf.range(vocab_size),
            name_index[:vocab_size],
            tf.size(distinct, out_type=tf.int64),
        ),
        vocab_size,
    )
    ids = tf.gather(first_line, name_index[vocab_size:])
    byte_ids, left_ids, right_ids, merged_ids = tf.split(
        ids, [256, tf.size(lefts), tf.size(lefts), tf.size(lefts)]
    )
    byte_known = byte_ids < vocab_size
    merge_known = (
        (left_ids < vocab_size)
        & (right_ids < vocab_size)
        & (merged_ids < vocab_size)
    )
    keys = tf.boolean_mask(left_ids * _SHIFT + right_ids, merge_known)
    values = tf.boolean_mask(ranks * _SHIFT + merged_ids, merge_known)
    distinct_keys, key_index = tf.unique(keys, out_idx=tf.int64)
    values = tf.math.unsorted_segment_max(
        values, key_index, tf.size(distinct_keys, out_type=tf.int64)
    )
    # A table cannot be initialised empty (e.g. from a file without
    # merges): each gets the key -1, which no lookup ever asks for.
    never = tf.constant([-1], tf.int64)
    return (
        tf.concat(
            [never, tf.boolean_mask(tf.range(256, dtype=tf.int64), byte_known)],
            0,
        ),
        tf.concat([never, tf.boolean_mask(byte_ids, byte_known)], 0),
        tf.concat([never, distinct_keys], 0),
        tf.concat([never, values], 0),
    )


def _in_ranges(values: tf.Tensor, ranges) -> tf.Tensor:
    """Whether each of `values` lies in one of the inclusive `ranges`."""
    inside = tf.zeros_like(values, tf.bool)
    for low, high in ranges:
        inside |= (values >= low) & (values <= high)
    return inside


def _previous(flags: tf.Tensor) -> tf.Tensor:
    """`flags[i - 1]` at each `i` (False at 0)."""
    return tf.concat([[False], flags], 0)[:-1]


def _next(flags: tf.Tensor) -> tf.Tensor:
    """`flags[i + 1]` at each `i` (False at the end)."""
    return tf.concat([flags, [False]], 0)[1:]


def _lines(content: tf.Tensor) -> tf.Tensor:
    """Splits file content into lines; a final newline ends the last one."""
    lines = tf.strings.split(content, "\n")
    ends_with_newline = tf.strings.regex_full_match(content, r"(?s)(.*\n)?")
    return lines[: tf.size(lines) - tf.cast(ends_with_newline, tf.int32)]


def _char_limit() -> int:
    return max(map(ord, byte_to_unicode())) + 1


def _char_to_byte() -> tf.Tensor:
    """Byte value of each code point below `_char_limit()`, else -1."""
    table = [-1] * _char_limit()
    for byte, char in enumerate(byte_to_unicode()):
        table[ord(char)] = byte
    return tf.constant(table, tf.int32)


def _single_bytes() -> tf.Tensor:
    return tf.constant([bytes([byte]) for byte in range(256)])


def _path_of(file):
    if isinstance(file, tf.saved_model.Asset):
        return file.asset_path
    return file


def _known_path(path):
    """`path` as a Python string or eager tensor, or None if not known."""
    if isinstance(path, str | bytes) or not tf.is_symbolic_tensor(path):
        return path
    value = tf.get_static_value(path)
    return None if value is None else tf.compat.as_str(value.item())
