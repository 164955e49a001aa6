"""The `longformer_classifier` family: Longformer fine-tuned to label
documents."""
