"""TextExampleGen: raw text (txt, jsonl, csv, .gz; local or gs://) to
train/eval tf.Examples, with every skipped record counted by reason."""

from textmill.components.text_example_gen.component import TextExampleGen
from textmill.components.text_example_gen.executor import REPORT_FILENAME
from textmill.components.text_example_gen.ingest_error import IngestError

__all__ = ["REPORT_FILENAME", "IngestError", "TextExampleGen"]
