"""Longformer backbone configurations (architectures only, no weights).

Build one with `LongformerBackbone(**backbone_presets[name]["config"])`; load
trained weights with `LongformerBackbone.from_preset(directory)` on a preset
directory written by `textmill.trainer.convert.convert_longformer` or by
`save_to_preset`.
"""

backbone_presets = {
    "longformer_base_4096": {
        "metadata": {
            "description": (
                "12-layer Longformer (RoBERTa-base size), 4096 tokens, "
                "attention window 512; allenai/longformer-base-4096."
            ),
        },
        "config": {
            "vocabulary_size": 50265,
            "num_layers": 12,
            "num_heads": 12,
            "hidden_dim": 768,
            "intermediate_dim": 3072,
            "attention_window": 512,
            "max_global_tokens": None,
            "dropout": 0.1,
            "max_sequence_length": 4096,
            "pad_token_id": 1,
            "layer_norm_epsilon": 1e-5,
        },
    },
    "longformer_tiny": {
        "metadata": {
            "description": (
                "2-layer, 64-wide Longformer for tests and smoke runs: 512 "
                "tokens, attention window 32, 1000-token vocabulary."
            ),
        },
        "config": {
            "vocabulary_size": 1000,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 64,
            "intermediate_dim": 128,
            "attention_window": 32,
            "max_global_tokens": None,
            "dropout": 0.1,
            "max_sequence_length": 512,
            "pad_token_id": 1,
            "layer_norm_epsilon": 1e-5,
        },
    },
}
