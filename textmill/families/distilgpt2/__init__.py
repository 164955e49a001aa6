"""The distilgpt2 family."""
