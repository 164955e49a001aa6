"""The translation family."""
