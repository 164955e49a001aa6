"""Knowledge distillation of a causal LM: a frozen teacher's softened
next-token distribution, the ordinary LM loss and aligned hidden states
teach a smaller student (the DistilBERT / DistilGPT2 recipe, Sanh et al.
2019).

The loss of a training step is

    kl_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))
    + lm_weight * cross-entropy(labels, student)
    + cosine_weight * (1 - cos(student hidden, teacher hidden))

each term averaged over the positions that count: the batch's sample
weights when it has them (summary tokens), else its padding mask. The
hidden states are the backbones' final (layer-normed) outputs, so student
and teacher must share `hidden_dim`.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import keras_hub
import tensorflow as tf

from textmill.trainer.models.gpt2.student_init import (
    init_student_from_teacher,
)

# Names of the per-term metrics a distillation step logs beside `loss`.
TERM_METRICS = ("kl_loss", "lm_loss", "cosine_loss")


@dataclasses.dataclass(frozen=True)
class DistillationWeights:
    """The recipe's knobs (defaults: DistilGPT2's).

    Args:
        temperature: softens both distributions before the KL term.
        kl_weight: weight of the KL term (scaled by temperature squared,
            so its gradients keep their size as the temperature changes).
        lm_weight: weight of the ordinary next-token cross-entropy.
        cosine_weight: weight of the hidden-state cosine term.

    Raises:
        ValueError: a non-positive temperature or a negative weight, or
            all weights zero.
    """

    temperature: float = 2.0
    kl_weight: float = 5.0
    lm_weight: float = 2.0
    cosine_weight: float = 1.0

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(
                f"temperature must be > 0, got {self.temperature}; 2.0 is "
                "the recipe's."
            )
        weights = {
            "kl_weight": self.kl_weight,
            "lm_weight": self.lm_weight,
            "cosine_weight": self.cosine_weight,
        }
        for name, value in weights.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        if not any(weights.values()):
            raise ValueError(
                "kl_weight, lm_weight and cosine_weight are all 0: nothing "
                "to learn; the recipe's are 5, 2 and 1."
            )


def position_weights(x: dict, sample_weight=None) -> tf.Tensor:
    """The weight of each position [batch, length] (float32): the sample
    weights when given, else the padding mask."""
    if sample_weight is not None:
        return tf.cast(sample_weight, tf.float32)
    return tf.cast(x["padding_mask"], tf.float32)


def _weighted_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """sum(values * weights) / sum(weights); 0 when no position counts."""
    return tf.math.divide_no_nan(
        tf.reduce_sum(values * weights), tf.reduce_sum(weights)
    )


def soft_kl(
    student_logits: tf.Tensor,
    teacher_logits: tf.Tensor,
    weights: tf.Tensor,
    temperature: float,
) -> tf.Tensor:
    """T^2 * KL(teacher || student) of the temperature-softened next-token
    distributions, averaged over weighted positions.

    Args:
        student_logits, teacher_logits: [batch, length, vocab].
        weights: [batch, length] position weights.
        temperature: T.

    Returns:
        A float32 scalar (0 when the two logits agree).
    """
    t = tf.constant(temperature, tf.float32)
    log_p_teacher = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t)
    log_p_student = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t)
    # [batch, length]
    kl = tf.reduce_sum(
        tf.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1
    )
    return t * t * _weighted_mean(kl, weights)


def hidden_cosine(
    student_hidden: tf.Tensor, teacher_hidden: tf.Tensor, weights: tf.Tensor
) -> tf.Tensor:
    """1 - cosine similarity of hidden states [batch, length, hidden],
    averaged over weighted positions (0 when they point the same way)."""
    student = tf.math.l2_normalize(tf.cast(student_hidden, tf.float32), -1)
    teacher = tf.math.l2_normalize(tf.cast(teacher_hidden, tf.float32), -1)
    # [batch, length]
    cosine = tf.reduce_sum(student * teacher, axis=-1)
    return _weighted_mean(1.0 - cosine, weights)


def hidden_and_logits(
    model: keras_hub.models.GPT2CausalLM, x: dict, training: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    """A GPT-2 causal LM's final hidden states and logits (one pass)."""
    hidden = model.backbone(x, training=training)
    return hidden, model.backbone.token_embedding(hidden, reverse=True)


def teacher_dtype() -> str:
    """The frozen teacher's dtype: the compute dtype of the global policy
    (bfloat16 or float16 under mixed precision, else float32); its
    variables never train, so they need no float32 copy."""
    return keras.mixed_precision.global_policy().compute_dtype


def load_teacher(preset_dir: str) -> keras_hub.models.GPT2CausalLM:
    """The frozen teacher of a keras-hub GPT-2 preset directory.

    Args:
        preset_dir: the `preset_dir` of a distilgpt2 run or the output of
            `textmill convert gpt2` (local or gs://).

    Returns:
        A non-trainable causal LM in `teacher_dtype()`.
    """
    backbone = keras_hub.models.GPT2Backbone.from_preset(
        preset_dir, dtype=teacher_dtype()
    )
    teacher = keras_hub.models.GPT2CausalLM(
        backbone=backbone, preprocessor=None
    )
    teacher.trainable = False
    return teacher


class DistillationModel(keras.Model):
    """A student causal LM that trains on a frozen teacher's outputs.

    Called, it is the student (logits), so evaluation, the compiled loss
    and metrics see the student alone: `val_loss` and `val_nll` are its LM
    loss. `train_step` runs the teacher in inference mode outside the
    gradient tape and minimises the weighted sum of the three terms (see
    the module docstring); it logs each term (`kl_loss`, `lm_loss`,
    `cosine_loss`) beside `loss`, the sum.

    Args:
        student: the GPT-2 causal LM that learns.
        teacher: a GPT-2 causal LM with the same vocabulary and hidden
            size; it is frozen here.
        weights: temperature and term weights (None: the recipe's).

    Raises:
        ValueError: the vocabularies or hidden sizes differ.

    Example:
        model = DistillationModel(student, load_teacher("presets/gpt2"))
        model.compile(optimizer="adamw", loss=SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"))
        model.fit(dataset)
        student = model.student
    """

    def __init__(
        self,
        student: keras_hub.models.GPT2CausalLM,
        teacher: keras_hub.models.GPT2CausalLM,
        weights: DistillationWeights | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name in ("vocabulary_size", "hidden_dim"):
            mine = getattr(student.backbone, name)
            theirs = getattr(teacher.backbone, name)
            if mine != theirs:
                raise ValueError(
                    f"the student's {name} is {mine} but the teacher's is "
                    f"{theirs}: a student must share the teacher's "
                    "vocabulary and hidden size; choose a preset with "
                    f"{name}={theirs}."
                )
        teacher.trainable = False
        self.student = student
        self.teacher = teacher
        self.distillation_weights = weights or DistillationWeights()
        # Attributes, so that Keras tracks and resets them with the model's
        # own metrics.
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.lm_loss_tracker = keras.metrics.Mean(name="lm_loss")
        self.cosine_loss_tracker = keras.metrics.Mean(name="cosine_loss")

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def loss_terms(self, x, y, sample_weight=None) -> tuple[dict, tf.Tensor]:
        """The three loss terms of a batch and the student's logits.

        The teacher runs in inference mode and no gradient reaches it;
        every term is divided by the replica count, as Keras divides the
        compiled loss, so summing replicas' gradients averages them.

        Returns:
            ({"kl_loss", "lm_loss", "cosine_loss"}, student logits).
        """
        teacher_hidden, teacher_logits = hidden_and_logits(
            self.teacher, x, training=False
        )
        teacher_hidden = tf.stop_gradient(teacher_hidden)
        teacher_logits = tf.stop_gradient(teacher_logits)
        hidden, logits = hidden_and_logits(self.student, x, training=True)
        weights = position_weights(x, sample_weight)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        kl = soft_kl(
            logits,
            teacher_logits,
            weights,
            self.distillation_weights.temperature,
        )
        terms = {
            "kl_loss": kl / replicas,
            # The compiled loss (and any regularisation), as Keras's own
            # train step computes it, already per replica.
            "lm_loss": self.compute_loss(
                x=x,
                y=y,
                y_pred=logits,
                sample_weight=sample_weight,
                training=True,
            ),
            "cosine_loss": hidden_cosine(hidden, teacher_hidden, weights)
            / replicas,
        }
        return terms, logits

    def total_loss(self, terms: dict) -> tf.Tensor:
        """The weighted sum of `loss_terms`' terms."""
        config = self.distillation_weights
        return (
            config.kl_weight * terms["kl_loss"]
            + config.lm_weight * tf.cast(terms["lm_loss"], tf.float32)
            + config.cosine_weight * terms["cosine_loss"]
        )

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms, logits = self.loss_terms(x, y, sample_weight)
            loss = self.total_loss(terms)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.student.trainable_weights
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        rows = tf.shape(x["token_ids"])[0]
        self._loss_tracker.update_state(loss * replicas, sample_weight=rows)
        for name, tracker in (
            ("kl_loss", self.kl_loss_tracker),
            ("lm_loss", self.lm_loss_tracker),
            ("cosine_loss", self.cosine_loss_tracker),
        ):
            tracker.update_state(
                tf.cast(terms[name], tf.float32) * replicas, sample_weight=rows
            )
        return self.compute_metrics(x, y, logits, sample_weight=sample_weight)

    def test_step(self, data):
        # The student alone; the terms are training metrics only.
        logs = super().test_step(data)
        return {k: v for k, v in logs.items() if k not in TERM_METRICS}


def weights_from_config(train) -> DistillationWeights:
    """The DistillationWeights of a TrainConfig's `distill_*` fields."""
    return DistillationWeights(
        temperature=train.distill_temperature,
        kl_weight=train.distill_kl_weight,
        lm_weight=train.distill_lm_weight,
        cosine_weight=train.distill_cosine_weight,
    )


def distill_from_preset(
    student: keras_hub.models.GPT2CausalLM,
    preset_dir: str,
    weights: DistillationWeights | None = None,
) -> DistillationModel:
    """A student initialised from, and taught by, a preset's model.

    Args:
        student: the untrained student; its weights are replaced by the
            teacher's embeddings and every other layer.
        preset_dir: the teacher's keras-hub preset directory.
        weights: temperature and term weights (None: the recipe's).

    Returns:
        The DistillationModel to compile and fit; `.student` is the model
        to export afterwards.

    Raises:
        ValueError: the student's sizes do not allow taking the teacher's
            layers (see `init_student_from_teacher`).
    """
    teacher = load_teacher(preset_dir)
    logging.info(
        "Distilling from %s: teacher of %d layers (%s), student of %d",
        preset_dir,
        teacher.backbone.num_layers,
        teacher.dtype_policy.name,
        student.backbone.num_layers,
    )
    init_student_from_teacher(student.backbone, teacher.backbone)
    return DistillationModel(student, teacher, weights)


def with_teacher(student: keras.Model, train) -> keras.Model:
    """The model a Trainer fits: `student` itself, or, when the
    TrainConfig `train` has `distill_from`, a DistillationModel of it."""
    if not train.distill_from:
        return student
    if isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    ):
        # Its custom loop calls compute_loss, not train_step: the student
        # would learn from the labels alone.
        raise ValueError(
            f"train.distill_from={train.distill_from!r}: distillation "
            "trains on one machine (its devices included), not under "
            "MultiWorkerMirroredStrategy; run it without a multi-worker "
            "cluster."
        )
    return distill_from_preset(
        student, train.distill_from, weights_from_config(train)
    )


def student_of(model: keras.Model) -> keras.Model:
    """The model to export after fitting what `with_teacher` returned."""
    return model.student if isinstance(model, DistillationModel) else model


def distillation_metadata(train) -> dict:
    """The model metadata of a distilled student: its teacher and recipe
    under "distilled_from" ({} when `train` does not distill)."""
    if not train.distill_from:
        return {}
    weights = dataclasses.asdict(weights_from_config(train))
    return {"distilled_from": {"teacher_preset": train.distill_from, **weights}}


def preset_logits_fn(preset_dir: str):
    """The logits of a GPT-2 preset's causal LM as a function of named
    int inputs [batch, length] (`token_ids`), as `SavedModelLogits`, for
    scoring a teacher on the windows a student is scored on."""
    model = load_teacher(preset_dir)

    @tf.function(reduce_retracing=True)
    def logits(token_ids):
        x = {"token_ids": token_ids, "padding_mask": tf.ones_like(token_ids)}
        return tf.cast(model(x, training=False), tf.float32)

    return lambda inputs: logits(
        tf.constant(inputs["token_ids"], tf.int32)
    ).numpy()
