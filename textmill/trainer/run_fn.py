"""The TFX Trainer entry point: `run_fn(fn_args)`.

It hands the run to the family named in the Trainer's custom_config; each
family trains, checkpoints and exports its own model (textmill.families).
"""

from __future__ import annotations

from textmill.families import get_family


def run_fn(fn_args) -> None:
    """Trains and exports the model of `fn_args.custom_config["family"]`."""
    get_family(fn_args.custom_config["family"]).function("train")(fn_args)
