"""BERT backbone configurations (architectures only, no weights).

Build one with `BertBackbone(**backbone_presets[name]["config"])`, giving
`vocabulary_size` of the vocabulary actually used; load trained weights
with `BertBackbone.from_preset(directory)` (or a task's `from_preset`) on a
preset directory written by `textmill.trainer.convert.bert.convert_bert` or
by `save_to_preset`.
"""

backbone_presets = {
    "bert_tiny": {
        "metadata": {
            "description": (
                "2-layer, 128-wide BERT (2 heads) for tests and smoke runs: "
                "128 positions."
            ),
        },
        "config": {
            "vocabulary_size": 30522,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 128,
            "intermediate_dim": 512,
            "dropout": 0.1,
            "max_sequence_length": 128,
            "num_segments": 2,
            "hidden_activation": "gelu",
        },
    },
    "bert_base": {
        "metadata": {
            "description": (
                "12-layer, 768-wide BERT (12 heads), 512 positions; the "
                "size of bert-base-uncased."
            ),
        },
        "config": {
            "vocabulary_size": 30522,
            "num_layers": 12,
            "num_heads": 12,
            "hidden_dim": 768,
            "intermediate_dim": 3072,
            "dropout": 0.1,
            "max_sequence_length": 512,
            "num_segments": 2,
            "hidden_activation": "gelu",
        },
    },
}
