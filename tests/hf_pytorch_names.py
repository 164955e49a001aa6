"""A Hugging Face TF model's weights under their PyTorch names, for the
reference scripts that write PyTorch-named checkpoints (they run under
tf-keras in a process of their own; `run_hf_reference_script` puts this
directory on their path)."""

import numpy as np
from transformers.modeling_tf_pytorch_utils import (
    convert_tf_weight_name_to_pt_weight_name,
)


def pytorch_named_tensors(model) -> dict:
    """The TF model's weights under their PyTorch names and layouts."""
    tensors = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            weight.name, tf_weight_shape=weight.shape
        )
        value = weight.numpy()
        if transpose.name != "NO":
            value = value.T
        tensors[name] = np.ascontiguousarray(value)
    return tensors
