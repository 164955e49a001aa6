"""textmill: TFX pipelines from raw text to deployed language models."""

__version__ = "0.1.0"
