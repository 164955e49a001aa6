"""Initialises a GPT-2 student from its teacher, as DistilBERT and
DistilGPT2 were: the embeddings, the final layer norm and every other
transformer layer (every k-th for a student k times shallower)."""

from __future__ import annotations

import logging

import keras_hub

# Sizes a student must share with its teacher to take its layers.
SHARED_SIZES = (
    "vocabulary_size",
    "hidden_dim",
    "num_heads",
    "intermediate_dim",
)


def teacher_layers(teacher_layers_count: int, student_layers: int) -> list[int]:
    """The teacher layers a student takes: every k-th from the first,
    k = teacher layers // student layers (12 -> 6: 0, 2, ..., 10).

    Raises:
        ValueError: the student is deeper than the teacher.
    """
    if not 1 <= student_layers <= teacher_layers_count:
        raise ValueError(
            f"the student has {student_layers} layers and the teacher "
            f"{teacher_layers_count}: a student takes its layers from the "
            "teacher, so it needs between 1 and as many layers; choose a "
            "shallower preset."
        )
    stride = teacher_layers_count // student_layers
    return [i * stride for i in range(student_layers)]


def _shape_errors(
    student: keras_hub.models.GPT2Backbone,
    teacher: keras_hub.models.GPT2Backbone,
) -> list[str]:
    errors = [
        f"{name} {getattr(student, name)} (teacher: {getattr(teacher, name)})"
        for name in SHARED_SIZES
        if getattr(student, name) != getattr(teacher, name)
    ]
    if student.max_sequence_length > teacher.max_sequence_length:
        errors.append(
            f"max_sequence_length {student.max_sequence_length} (teacher: "
            f"at most {teacher.max_sequence_length})"
        )
    return errors


def init_student_from_teacher(
    student: keras_hub.models.GPT2Backbone,
    teacher: keras_hub.models.GPT2Backbone,
) -> list[int]:
    """Copies the teacher's weights into the student, in place.

    The student takes the token embeddings, the first
    `student.max_sequence_length` position embeddings, the final layer
    norm and the transformer layers `teacher_layers` picks.

    Args:
        student: the (untrained) student backbone.
        teacher: the teacher backbone.

    Returns:
        The indices of the teacher layers copied, in student order.

    Raises:
        ValueError: naming every size the two do not share, or a student
            deeper than its teacher.
    """
    errors = _shape_errors(student, teacher)
    if errors:
        raise ValueError(
            "cannot initialise the student from the teacher: the student's "
            + "; ".join(errors)
            + ". Choose a student preset with the teacher's widths (e.g. "
            "distilgpt2 for gpt2) and fewer layers."
        )
    picked = teacher_layers(teacher.num_layers, student.num_layers)
    student.token_embedding.set_weights(teacher.token_embedding.get_weights())
    (positions,) = teacher.position_embedding.get_weights()
    student.position_embedding.set_weights(
        [positions[: student.max_sequence_length]]
    )
    student.layer_norm.set_weights(teacher.layer_norm.get_weights())
    for mine, theirs in zip(student.transformer_layers, picked, strict=True):
        mine.set_weights(teacher.transformer_layers[theirs].get_weights())
    logging.info(
        "Student initialised from teacher layers %s of %d",
        picked,
        teacher.num_layers,
    )
    return picked
