"""BERT backbone, NSP predictor, pretrainer and masking on tiny data."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from textmill.trainer.models.bert import (
    BertBackbone,
    BertNextSentencePredictor,
    BertPretrainer,
    BertPretrainerMaskGenerator,
    backbone_presets,
)

VOCAB = 60
LENGTH = 16
PAD, UNK, CLS, SEP, MASK = range(5)


def tiny_backbone(**overrides) -> BertBackbone:
    config = {
        **backbone_presets["bert_tiny"]["config"],
        "vocabulary_size": VOCAB,
        "hidden_dim": 32,
        "intermediate_dim": 64,
        "max_sequence_length": LENGTH,
        "dropout": 0.0,
        **overrides,
    }
    return BertBackbone(**config)


def packed_pairs(
    count: int, seed: int = 0, length: int = LENGTH, longest: int = 6
) -> dict[str, np.ndarray]:
    """`[CLS] A [SEP] B [SEP] [PAD]...`; B comes from the lower half of the
    vocabulary iff `is_next`, a signal a tiny model learns in a few steps."""
    rng = np.random.default_rng(seed)
    features = {
        name: np.zeros((count, length), "int32")
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    is_next = rng.integers(0, 2, count)
    for row in range(count):
        length_a, length_b = rng.integers(2, longest, 2)
        low_b = 5 if is_next[row] else 32
        a = rng.integers(5, VOCAB, length_a)
        b = rng.integers(low_b, low_b + 27, length_b)
        ids = [CLS, *a, SEP, *b, SEP]
        features["token_ids"][row, : len(ids)] = ids
        features["segment_ids"][row, length_a + 2 : len(ids)] = 1
        features["padding_mask"][row, : len(ids)] = 1
    return {**features, "is_next": is_next}


def test_backbone_activation_is_configurable_and_serialized():
    keras.utils.set_random_seed(0)
    exact = tiny_backbone(hidden_activation="gelu")
    config = exact.get_config()
    assert config["hidden_activation"] == "gelu"
    config["hidden_activation"] = "gelu_approximate"
    approximate = BertBackbone.from_config(config)
    approximate.set_weights(exact.get_weights())
    features = packed_pairs(4)
    del features["is_next"]
    # Larger weights so that the two forms of GELU differ visibly.
    rng = np.random.default_rng(0)
    for layer_exact, layer_approximate in zip(
        exact.transformer_layers, approximate.transformer_layers, strict=True
    ):
        kernel = rng.normal(0.0, 1.0, (32, 64)).astype("float32")
        layer_exact._feedforward_intermediate_dense.kernel.assign(kernel)
        layer_approximate._feedforward_intermediate_dense.kernel.assign(kernel)
    out_exact = exact.predict(features, verbose=0)["sequence_output"]
    out_approximate = approximate.predict(features, verbose=0)[
        "sequence_output"
    ]
    # Identical weights and inputs: any difference is the activation's.
    assert np.abs(out_exact - out_approximate).max() > 1e-5
    with pytest.raises(ValueError, match="hidden_activation='relu'"):
        tiny_backbone(hidden_activation="relu")


def test_presets_have_the_documented_sizes():
    tiny = backbone_presets["bert_tiny"]["config"]
    base = backbone_presets["bert_base"]["config"]
    assert (
        tiny["num_layers"],
        tiny["hidden_dim"],
        tiny["num_heads"],
        tiny["intermediate_dim"],
        tiny["max_sequence_length"],
    ) == (2, 128, 2, 512, 128)
    assert (
        base["num_layers"],
        base["hidden_dim"],
        base["num_heads"],
        base["intermediate_dim"],
        base["max_sequence_length"],
        base["vocabulary_size"],
    ) == (12, 768, 12, 3072, 512, 30522)


def test_next_sentence_predictor_learns_and_reloads(tmp_path):
    keras.utils.set_random_seed(1)
    predictor = BertNextSentencePredictor(tiny_backbone())
    predictor.compile(optimizer=keras.optimizers.Adam(1e-2))
    features = packed_pairs(48)
    labels = features.pop("is_next")
    history = predictor.fit(
        features, labels, batch_size=16, epochs=6, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert predictor.predict(features, verbose=0).shape == (48, 2)

    expected = predictor.predict(features, verbose=0)
    predictor.save_to_preset(str(tmp_path / "preset"))
    reloaded = BertNextSentencePredictor.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        reloaded.predict(features, verbose=0), expected, atol=1e-6
    )
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(backbone, BertBackbone)

    predictor.save(str(tmp_path / "model.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "model.keras"))
    assert isinstance(loaded, BertNextSentencePredictor)
    np.testing.assert_allclose(
        loaded.predict(features, verbose=0), expected, atol=1e-6
    )


def mask_generator(selection_length: int) -> BertPretrainerMaskGenerator:
    return BertPretrainerMaskGenerator(
        vocabulary_size=VOCAB,
        mask_selection_length=selection_length,
        mask_token_id=MASK,
        unselectable_token_ids=(PAD, CLS, SEP),
    )


def test_masking_statistics_inside_tf_data():
    tf.random.set_seed(0)
    # Long segments: the selection count is rounded up per sequence.
    features = packed_pairs(1000, seed=3, length=128, longest=62)
    masker = mask_generator(selection_length=40)
    dataset = (
        tf.data.Dataset.from_tensor_slices(features).batch(500).map(masker)
    )
    selected = masked = randomized = kept = selectable = 0
    for x, y, weights in dataset:
        original = tf.gather(
            x["token_ids"], x["mask_positions"], batch_dims=1
        ).numpy()
        real = weights["mlm"].numpy() > 0
        truth = y["mlm"].numpy()
        selected += real.sum()
        masked += (real & (original == MASK)).sum()
        kept += (real & (original == truth)).sum()
        randomized += (real & (original != MASK) & (original != truth)).sum()
        assert not np.isin(truth[real], (PAD, CLS, SEP)).any()
        np.testing.assert_array_equal(weights["nsp"].numpy(), 1.0)
        assert set(np.unique(y["nsp"].numpy())) <= {0, 1}
    ids = features["token_ids"]
    selectable = (~np.isin(ids, (PAD, CLS, SEP))).sum()
    assert 0.14 < selected / selectable < 0.17
    assert 0.77 < masked / selected < 0.83
    # A random token equal to the original counts as kept.
    assert 0.07 < randomized / selected < 0.12
    assert 0.08 < kept / selected < 0.13


@pytest.mark.slow
def test_pretrainer_trains_both_heads():
    keras.utils.set_random_seed(2)
    pretrainer = BertPretrainer(tiny_backbone())
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Masks are drawn once and replayed: the losses then measure learning,
    # not the luck of each epoch's masks.
    dataset = (
        tf.data.Dataset.from_tensor_slices(packed_pairs(48))
        .batch(16)
        .map(mask_generator(selection_length=4))
        .cache()
    )
    nsp_kernel = pretrainer.next_sentence_head.kernel.numpy()
    history = pretrainer.fit(dataset, epochs=10, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["mlm_loss"][-1] < history["mlm_loss"][0]
    # The summed loss trains the NSP head too (on this little data the
    # MLM dominates; NSP learning is shown by the predictor's test).
    assert (
        np.abs(pretrainer.next_sentence_head.kernel.numpy() - nsp_kernel).max()
        > 1e-3
    )
    assert {"nsp_loss", "mlm_accuracy", "nsp_accuracy"} <= set(history)


def test_pretrainer_round_trip_and_nsp_export(tmp_path):
    keras.utils.set_random_seed(3)
    pretrainer = BertPretrainer(tiny_backbone())
    features = packed_pairs(8, seed=5)
    del features["is_next"]
    positions = np.tile(np.arange(LENGTH, dtype="int32"), (8, 1))
    inputs = {**features, "mask_positions": positions}
    outputs = pretrainer.predict(inputs, verbose=0)
    assert outputs["mlm"].shape == (8, LENGTH, VOCAB)
    assert outputs["nsp"].shape == (8, 2)
    predictor = pretrainer.next_sentence_predictor()
    assert predictor.backbone is pretrainer.backbone
    np.testing.assert_allclose(
        predictor.predict(features, verbose=0), outputs["nsp"], atol=1e-6
    )

    pretrainer.save_to_preset(str(tmp_path / "preset"))
    reloaded = BertPretrainer.from_preset(str(tmp_path / "preset"))
    again = reloaded.predict(inputs, verbose=0)
    np.testing.assert_allclose(again["mlm"], outputs["mlm"], atol=1e-5)
    nsp_only = BertNextSentencePredictor.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        nsp_only.predict(features, verbose=0), outputs["nsp"], atol=1e-6
    )
