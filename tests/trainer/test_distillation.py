"""Distillation loss terms and the distillation train step."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from textmill.trainer.distillation import (
    DistillationModel,
    DistillationWeights,
    distillation_metadata,
    hidden_cosine,
    load_teacher,
    preset_logits_fn,
    soft_kl,
    student_of,
    with_teacher,
)

VOCAB = 53


def _causal_lm(num_layers: int, seed: int, **overrides):
    keras.utils.set_random_seed(seed)
    config = {
        "vocabulary_size": VOCAB,
        "num_layers": num_layers,
        "num_heads": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "max_sequence_length": 16,
        "dropout": 0.0,
    }
    backbone = keras_hub.models.GPT2Backbone(**(config | overrides))
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def _batch(rows: int = 4, length: int = 8, padded: int = 3):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (rows, length + 1)).astype(np.int32)
    mask = np.ones((rows, length), bool)
    mask[:, length - padded :] = False  # the last positions are padding
    return {"token_ids": ids[:, :-1], "padding_mask": mask}, ids[:, 1:]


def _compiled(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=["sparse_categorical_accuracy"],
    )
    return model


def test_kl_is_zero_for_equal_logits_and_ignores_padding():
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(size=(2, 5, 7)), tf.float32)
    weights = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], tf.float32)
    assert float(soft_kl(logits, logits, weights, 2.0)) == pytest.approx(
        0.0, abs=1e-6
    )
    other = tf.constant(rng.normal(size=(2, 5, 7)), tf.float32)
    kl = float(soft_kl(other, logits, weights, 2.0))
    assert kl > 0.01
    # Changing the student at padded positions changes nothing.
    at_padding = tf.constant(weights.numpy()[..., None] == 0)
    noisy = tf.where(at_padding, other + 100.0, other)
    assert float(soft_kl(noisy, logits, weights, 2.0)) == pytest.approx(kl)
    # By hand: T^2 * mean over counted positions of KL(p_t || p_s).
    p_t = tf.nn.softmax(logits / 2.0).numpy()
    p_s = tf.nn.softmax(other / 2.0).numpy()
    per_position = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1)
    expected = 4.0 * (per_position * weights.numpy()).sum() / 7.0
    assert kl == pytest.approx(expected, rel=1e-5)


def test_cosine_is_zero_for_parallel_states_and_two_for_opposite():
    rng = np.random.default_rng(2)
    hidden = tf.constant(rng.normal(size=(2, 4, 6)), tf.float32)
    weights = tf.constant([[1, 1, 0, 0], [1, 1, 1, 1]], tf.float32)
    assert float(hidden_cosine(hidden, 3.0 * hidden, weights)) == (
        pytest.approx(0.0, abs=1e-6)
    )
    assert float(hidden_cosine(-hidden, hidden, weights)) == pytest.approx(2.0)


def test_student_equal_to_teacher_has_no_distillation_loss():
    teacher = _causal_lm(2, seed=3)
    student = _causal_lm(2, seed=4)
    student.set_weights(teacher.get_weights())
    model = _compiled(DistillationModel(student, teacher))
    x, y = _batch()
    terms, _ = model.loss_terms(x, y)
    assert float(terms["kl_loss"]) == pytest.approx(0.0, abs=1e-5)
    assert float(terms["cosine_loss"]) == pytest.approx(0.0, abs=1e-5)
    assert float(terms["lm_loss"]) > 1.0


def test_training_moves_only_the_student_and_logs_each_term():
    teacher = _causal_lm(4, seed=5)
    student = _causal_lm(2, seed=6)
    model = _compiled(
        DistillationModel(
            student, teacher, DistillationWeights(temperature=3.0)
        )
    )
    x, y = _batch()
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]

    # The gradient of the distillation loss reaches no teacher variable.
    with tf.GradientTape() as tape:
        loss = model.total_loss(model.loss_terms(x, y)[0])
    gradients = tape.gradient(loss, teacher.weights + student.weights)
    assert all(g is None for g in gradients[: len(teacher.weights)])
    assert all(g is not None for g in gradients[len(teacher.weights) :])

    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    history = model.fit(
        data, steps_per_epoch=2, epochs=2, validation_data=data.take(1)
    ).history
    for before, after in zip(
        teacher_before, teacher.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(before, after)
    assert any(
        not np.array_equal(before, after)
        for before, after in zip(
            student_before, student.get_weights(), strict=True
        )
    )
    assert set(history) >= {"loss", "kl_loss", "lm_loss", "cosine_loss"}
    assert not {"val_kl_loss", "val_lm_loss", "val_cosine_loss"} & set(history)
    # loss = 5 kl + 2 lm + 1 cos, each an average over the same batches.
    expected = (
        5 * np.array(history["kl_loss"])
        + 2 * np.array(history["lm_loss"])
        + np.array(history["cosine_loss"])
    )
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-4)
    # val_loss is the student's own LM loss on the batch.
    lm = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )(y, student(x))
    assert history["val_loss"][-1] == pytest.approx(float(lm), rel=1e-4)
    # The student learns: the distillation loss falls.
    assert history["loss"][-1] < history["loss"][0]


def test_sample_weights_decide_which_positions_count():
    teacher = _causal_lm(2, seed=7)
    student = _causal_lm(2, seed=8)
    model = _compiled(DistillationModel(student, teacher))
    x, y = _batch(padded=0)
    only_first = np.zeros(y.shape, np.float32)
    only_first[:, :2] = 1.0
    terms, logits = model.loss_terms(x, y, tf.constant(only_first))
    teacher_logits = teacher(x)
    expected = soft_kl(
        logits[:, :2], teacher_logits[:, :2], tf.ones((4, 2)), 2.0
    )
    assert float(terms["kl_loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_mismatched_teacher_is_refused_with_the_size():
    with pytest.raises(ValueError, match="hidden_dim is 8 but the teacher"):
        DistillationModel(_causal_lm(1, 0, hidden_dim=8), _causal_lm(2, 0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"kl_weight": -1.0}, "kl_weight must be >= 0"),
        (
            {"kl_weight": 0.0, "lm_weight": 0.0, "cosine_weight": 0.0},
            "nothing to learn",
        ),
    ],
)
def test_bad_weights_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillationWeights(**kwargs)


def test_teacher_loads_frozen_in_the_policys_compute_dtype(tmp_path):
    teacher = _causal_lm(2, seed=9)
    teacher.backbone.save_to_preset(str(tmp_path))
    x, _ = _batch(rows=1, padded=0)
    expected = teacher(x).numpy()
    logits = preset_logits_fn(str(tmp_path))({"token_ids": x["token_ids"]})
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        loaded = load_teacher(str(tmp_path))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not loaded.trainable and not loaded.trainable_weights
    assert {w.dtype for w in loaded.weights} == {"bfloat16"}


def test_a_train_config_with_a_teacher_builds_the_distillation(tmp_path):
    from textmill.config import TrainConfig

    teacher = _causal_lm(4, seed=10)
    teacher.backbone.save_to_preset(str(tmp_path))
    student = _causal_lm(2, seed=11)
    assert with_teacher(student, TrainConfig()) is student
    assert distillation_metadata(TrainConfig()) == {}

    train = TrainConfig(distill_from=str(tmp_path), distill_temperature=3.0)
    model = with_teacher(student, train)
    assert isinstance(model, DistillationModel)
    assert student_of(model) is student
    assert model.distillation_weights.temperature == 3.0
    np.testing.assert_array_equal(
        student.backbone.transformer_layers[1].get_weights()[0],
        teacher.backbone.transformer_layers[2].get_weights()[0],
    )
    assert distillation_metadata(train) == {
        "distilled_from": {
            "teacher_preset": str(tmp_path),
            "temperature": 3.0,
            "kl_weight": 5.0,
            "lm_weight": 2.0,
            "cosine_weight": 1.0,
        }
    }
