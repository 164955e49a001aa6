"""The configuration flags of `textmill run`, `compile`, `submit` and
`schedule`, declared once.

Each flag sets one field of `PipelineConfig`. `run` and `compile` take them
all and build their config with `config_from_args`. `submit` and `schedule`
start a pipeline that is already compiled, whose only changeable values are
its runtime parameters, so they take the flags marked `runtime` and check
their values with `check_runtime_flags`, as `run` checks them.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from textmill.config import (
    PipelineConfig,
    config_from_dict,
    load_config,
    with_overrides,
)
from textmill.families import FAMILIES


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """A command-line flag that sets one config field.

    Args:
        flag: the option, e.g. `--train-steps`; its argparse dest is the
            option's name with `_` for `-`.
        section: `top` or the `PipelineConfig` section of the field.
        field: the field's name in that section.
        help: the flag's help line.
        type: the value's type (`str`, `int` or `float`).
        repeatable: each use appends a value (a tuple field).
        switch: a flag without a value that sets the field to True.
        choices: the accepted values, if limited.
        metavar: the value's name in the usage line; "" derives it.
        runtime: a runtime parameter of the compiled Vertex AI pipeline,
            so `submit` and `schedule` take it too.
    """

    flag: str
    section: str
    field: str
    help: str
    type: type = str
    repeatable: bool = False
    switch: bool = False
    choices: tuple[str, ...] = ()
    metavar: str = ""
    runtime: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Adds the flag to `parser`; an unset flag parses as None."""
        text = self.help
        if self.runtime:
            text += " (a runtime parameter on Vertex AI)"
        if self.switch:
            parser.add_argument(
                self.flag, action="store_true", default=None, help=text
            )
            return
        parser.add_argument(
            self.flag,
            type=self.type,
            action="append" if self.repeatable else "store",
            choices=self.choices or None,
            metavar=self.metavar or self.dest.upper(),
            help=text,
        )


CONFIG_FLAGS = (
    ConfigFlag(
        "--family",
        "top",
        "family",
        f"model family: {', '.join(FAMILIES)}",
        choices=tuple(FAMILIES),
    ),
    ConfigFlag(
        "--data",
        "ingest",
        "input_patterns",
        "input file pattern, local or gs:// (gs:// on Vertex AI); "
        "repeatable",
        repeatable=True,
        metavar="PATTERN",
        runtime=True,
    ),
    ConfigFlag(
        "--text-field",
        "ingest",
        "text_field",
        "JSON field or CSV column of the text",
    ),
    ConfigFlag(
        "--target-field",
        "ingest",
        "target_field",
        "JSON field or CSV column of the target text (summarization; "
        "default: summary)",
    ),
    ConfigFlag(
        "--label-field",
        "ingest",
        "label_field",
        "JSON field or CSV column of the label (longformer_classifier; "
        "default: label)",
    ),
    ConfigFlag(
        "--strict",
        "ingest",
        "strict",
        "stop at the first bad input record",
        switch=True,
    ),
    ConfigFlag(
        "--serving-dir",
        "top",
        "serving_dir",
        "push to SERVING_DIR/MODEL/VERSION",
    ),
    ConfigFlag(
        "--model-name", "top", "model_name", "name under the serving dir"
    ),
    ConfigFlag("--preset", "train", "preset", "model preset, e.g. tiny"),
    ConfigFlag(
        "--init-from",
        "train",
        "init_from",
        "keras-hub preset dir to fine-tune (gs:// on Vertex AI)",
    ),
    ConfigFlag(
        "--distill-from",
        "train",
        "distill_from",
        "keras-hub GPT-2 preset dir whose model teaches the student "
        "(distilgpt2)",
    ),
    ConfigFlag(
        "--train-steps",
        "train",
        "train_steps",
        "optimizer steps",
        type=int,
        runtime=True,
    ),
    ConfigFlag(
        "--max-perplexity",
        "validation",
        "max_perplexity",
        "ceiling on the eval perplexity of a blessed model",
        type=float,
        runtime=True,
    ),
    ConfigFlag(
        "--max-regression",
        "validation",
        "max_regression",
        "how much worse than the last blessed model a candidate may be "
        "(0.05 = 5 %%)",
        type=float,
        runtime=True,
    ),
)


def add_config_flags(
    parser: argparse.ArgumentParser, runtime_only: bool = False
) -> None:
    """Adds the configuration flags to a command's parser.

    Args:
        parser: the command's parser.
        runtime_only: add only the flags of runtime parameters (for
            `submit` and `schedule`); otherwise add every flag and
            `--config`.
    """
    group = parser.add_argument_group("configuration (PipelineConfig)")
    if not runtime_only:
        group.add_argument(
            "--config", help="YAML file shaped like PipelineConfig"
        )
    for flag in CONFIG_FLAGS:
        if flag.runtime or not runtime_only:
            flag.add_to(group)


def config_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config fields the flags set, by section (`top` for top-level
    fields); flags not given and flags the command lacks are left out."""
    sections: dict[str, dict[str, Any]] = {}
    for flag in CONFIG_FLAGS:
        value = getattr(args, flag.dest, None)
        if value is not None:
            sections.setdefault(flag.section, {})[flag.field] = value
    return sections


def config_from_args(args: argparse.Namespace, **top: Any) -> PipelineConfig:
    """The `--config` file (or the defaults) with the flags applied.

    Args:
        args: parsed arguments of a command given `add_config_flags`.
        **top: top-level fields the command sets itself (`work_dir`,
            `beam_pipeline_args`, ...); None leaves a field as it is.

    Returns:
        The config, not yet validated.

    Raises:
        ConfigError: the file cannot be read, or a value has the wrong type.
    """
    config = load_config(args.config) if args.config else PipelineConfig()
    sections = config_overrides(args)
    sections["top"] = {**sections.get("top", {}), **top}
    return with_overrides(config, **sections)


def check_runtime_flags(args: argparse.Namespace) -> None:
    """Checks the sections the flags set, as `run` checks them.

    Args:
        args: parsed arguments of a command given `add_config_flags`.

    Raises:
        ConfigError: naming the field, the value and the fix.
    """
    sections = config_overrides(args)
    sections.pop("top", None)
    config = config_from_dict(sections)
    for section in sections:
        getattr(config, section).validate()
