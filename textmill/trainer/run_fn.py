"""The TFX Trainer entry point: `run_fn(fn_args)`.

It runs the trainer's one template (`training.train`) with the family
named in the Trainer's custom_config (textmill.families).
"""

from __future__ import annotations

from textmill.families import load_family
from textmill.trainer import training


def run_fn(fn_args) -> None:
    """Trains and exports the model of `fn_args.custom_config["family"]`."""
    training.train(load_family(fn_args.custom_config["family"]), fn_args)
