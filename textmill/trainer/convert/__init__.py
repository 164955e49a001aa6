"""Hugging Face checkpoint directories -> textmill models (no network)."""
