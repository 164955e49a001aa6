"""TextExampleGen: raw text (txt, jsonl, csv, .gz; local or gs://) to
train/eval tf.Examples, with every skipped record counted by reason.

Optionally each jsonl record or csv row is a pair, such as a document and
its summary (`target_field`), written as the features `text` and `target`.
"""

from textmill.components.text_example_gen.component import TextExampleGen
from textmill.components.text_example_gen.executor import REPORT_FILENAME
from textmill.components.text_example_gen.ingest_error import IngestError

__all__ = ["REPORT_FILENAME", "IngestError", "TextExampleGen"]
