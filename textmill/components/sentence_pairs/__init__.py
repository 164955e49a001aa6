"""SentencePairGen: documents to BERT next-sentence-prediction pairs
(`sentence_a`, `sentence_b`, `is_next`), deterministic for a seed."""

from textmill.components.sentence_pairs.component import SentencePairGen
from textmill.components.sentence_pairs.executor import REPORT_FILENAME
from textmill.components.sentence_pairs.sentence_splitter import (
    split_sentences,
)

__all__ = ["REPORT_FILENAME", "SentencePairGen", "split_sentences"]
