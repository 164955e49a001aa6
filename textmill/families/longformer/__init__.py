"""The longformer family."""
