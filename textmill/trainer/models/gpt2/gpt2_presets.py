"""Architecture presets of the GPT-2 family (configs only, no weights).

`vocabulary_size` is the tokenizer's default when a vocabulary is learned;
the model is always built with the size of the vocabulary actually used.
"""

GPT2_PRESETS = {
    # Small enough for a full local pipeline run on 2 CPU cores in minutes.
    "tiny": {
        "vocabulary_size": 4096,
        "num_layers": 2,
        "num_heads": 4,
        "hidden_dim": 128,
        "intermediate_dim": 512,
        "dropout": 0.0,
        "max_sequence_length": 256,
    },
    # `tiny` twice as deep: a teacher `tiny` students are distilled from
    # (they take its layers 0 and 2).
    "tiny4": {
        "vocabulary_size": 4096,
        "num_layers": 4,
        "num_heads": 4,
        "hidden_dim": 128,
        "intermediate_dim": 512,
        "dropout": 0.0,
        "max_sequence_length": 256,
    },
    # DistilGPT2: GPT-2 small distilled to 6 layers.
    "distilgpt2": {
        "vocabulary_size": 50257,
        "num_layers": 6,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
        "dropout": 0.1,
        "max_sequence_length": 1024,
    },
    "gpt2": {
        "vocabulary_size": 50257,
        "num_layers": 12,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
        "dropout": 0.1,
        "max_sequence_length": 1024,
    },
}
