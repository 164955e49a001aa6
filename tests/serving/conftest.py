"""A tiny SavedModel with real signatures for the model server tests."""

import pytest
import tensorflow as tf


class TinyModel(tf.Module):
    """A numeric, generate-like, string and slow signatures."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = tf.Variable(scale)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def scale_rows(self, x):
        return {"y": x * self.scale, "total": tf.reduce_sum(x, axis=1)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def generate(self, prompt, max_new_tokens):
        tail = tf.strings.reduce_join(tf.fill([max_new_tokens], "!"))
        return {"completion": tf.strings.join([prompt, tail])}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def generate_beam(self, prompt, max_new_tokens, num_beams):
        tail = tf.strings.reduce_join(tf.fill([max_new_tokens], "!"))
        beams = tf.strings.as_string(num_beams)
        return {"completion": tf.strings.join([prompt, tail, beams])}

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
    def busy(self, steps):
        """Counts to `steps` in the graph: a call that takes a while."""
        count = tf.while_loop(
            lambda i: i < steps, lambda i: i + 1, (tf.constant(0, tf.int64),)
        )
        return {"count": count[0]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def parse_examples(self, examples):
        """Serialized tf.Examples in, as exported models' score_examples:
        the made-up warm-up string is not one, so it is left cold."""
        features = tf.io.parse_example(
            examples, {"x": tf.io.FixedLenFeature([], tf.float32)}
        )
        return {"x": features["x"] * self.scale}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def text_stats(self, text):
        first = tf.strings.substr(text, 0, 1)
        return {
            "first": first,
            "first_bytes": first,
            "length": tf.strings.length(text),
        }


def _save(path: str, scale: float) -> None:
    model = TinyModel(scale)
    tf.saved_model.save(
        model,
        path,
        signatures={
            "serving_default": model.scale_rows,
            "generate": model.generate,
            "text_stats": model.text_stats,
            "generate_beam": model.generate_beam,
            "busy": model.busy,
            "parse_examples": model.parse_examples,
        },
    )


@pytest.fixture(scope="session")
def save_tiny_model():
    """`save(path, scale)`: writes a TinyModel SavedModel to `path`."""
    return _save
