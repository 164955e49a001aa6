"""The error TextExampleGen raises for input it cannot ingest."""


class IngestError(ValueError):
    """Input that TextExampleGen cannot ingest.

    Raised when a pattern matches no file, and in `strict` mode for the
    first record that cannot be read. The message names the file, the
    record, the reason and the fix, in one line, so that it survives Beam's
    exception wrapping.

    Args:
        message: the one-line description.

    Example:

    ```python
    try:
        run_pipeline()
    except IngestError as e:
        print(e)  # data/a.jsonl: record 7: malformed_json (...). Fix: ...
    ```
    """
