"""The student takes the teacher's embeddings and every other layer."""

import keras
import keras_hub
import numpy as np
import pytest

from textmill.trainer.models.gpt2.student_init import (
    init_student_from_teacher,
    teacher_layers,
)


def _backbone(num_layers: int, **overrides) -> keras_hub.models.GPT2Backbone:
    config = {
        "vocabulary_size": 61,
        "num_layers": num_layers,
        "num_heads": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "max_sequence_length": 24,
    }
    return keras_hub.models.GPT2Backbone(**(config | overrides))


def test_teacher_layers_are_every_kth():
    assert teacher_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert teacher_layers(4, 2) == [0, 2]
    assert teacher_layers(5, 2) == [0, 2]
    assert teacher_layers(3, 3) == [0, 1, 2]


def test_a_deeper_student_is_refused():
    with pytest.raises(ValueError, match="student has 3 layers.*teacher 2"):
        teacher_layers(2, 3)


def test_copy_is_exact_and_the_student_computes_the_teachers_layers():
    keras.utils.set_random_seed(1)
    teacher = _backbone(4)
    student = _backbone(2, max_sequence_length=16)
    assert init_student_from_teacher(student, teacher) == [0, 2]

    for mine, theirs in ((0, 0), (1, 2)):
        for a, b in zip(
            student.transformer_layers[mine].get_weights(),
            teacher.transformer_layers[theirs].get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        student.token_embedding.get_weights()[0],
        teacher.token_embedding.get_weights()[0],
    )
    np.testing.assert_array_equal(
        student.position_embedding.get_weights()[0],
        teacher.position_embedding.get_weights()[0][:16],
    )
    # The student's forward pass is the teacher's with layers 1 and 3
    # skipped.
    x = {
        "token_ids": np.array([[5, 7, 9, 11, 2, 3]], np.int32),
        "padding_mask": np.ones((1, 6), np.int32),
    }
    h = teacher.embeddings_add(
        (teacher.token_embedding(x["token_ids"]),)
        + (teacher.position_embedding(teacher.token_embedding(x["token_ids"])),)
    )
    for i in (0, 2):
        h = teacher.transformer_layers[i](
            h, decoder_padding_mask=x["padding_mask"]
        )
    np.testing.assert_allclose(
        student(x), teacher.layer_norm(h), rtol=1e-5, atol=1e-5
    )


def test_different_widths_are_named_with_the_fix():
    teacher = _backbone(4)
    student = _backbone(2, hidden_dim=8, max_sequence_length=32)
    with pytest.raises(ValueError) as error:
        init_student_from_teacher(student, teacher)
    message = str(error.value)
    assert "hidden_dim 8 (teacher: 16)" in message
    assert "max_sequence_length 32 (teacher: at most 24)" in message
    assert "Choose a student preset" in message
