"""The summarization family."""
