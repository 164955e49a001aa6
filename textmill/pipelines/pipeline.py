"""create_pipeline: the whole DAG from raw text to a pushed model.

Wiring only: every step's logic lives in its component, and every value in
PipelineConfig. The same definition runs locally and on Vertex AI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

import textmill
from textmill.components.data_gate import DataGate
from textmill.components.model_validator import ModelValidator
from textmill.components.sentence_pairs import SentencePairGen
from textmill.components.serving_pusher import ServingPusher
from textmill.components.text_example_gen import TextExampleGen
from textmill.components.tflite_export import TFLiteExport
from textmill.config import PipelineConfig
from textmill.families import get_family
from textmill.features import (
    ANOMALIES_KEY,
    BLESSING_KEY,
    EXAMPLES_KEY,
    MODEL_KEY,
    SCHEMA_KEY,
    SENTENCE_PAIRS_KEY,
    STATISTICS_KEY,
    TFLITE_MODEL_KEY,
    TRANSFORM_GRAPH_KEY,
    TRANSFORMED_EXAMPLES_KEY,
)

RUN_FN = "textmill.trainer.run_fn.run_fn"


@dataclasses.dataclass(frozen=True)
class PipelineOverrides:
    """What a runner other than the local one changes in the pipeline.

    The wiring stays the same: a runner may swap the Trainer's component
    class, add to its custom_config, turn execution parameters into runtime
    parameters, and deploy a blessed model to more places.

    Args:
        trainer_class: the Trainer component class; it takes the arguments
            of `tfx.components.Trainer` (e.g. the Vertex AI Training one).
        trainer_custom_config: merged into the Trainer's custom_config.
        runtime_parameters: maps a runtime parameter name to the execution
            parameter it replaces, as "ComponentId.parameter" (e.g.
            "ModelValidator.max_perplexity"). The configured value becomes
            the parameter's default. TFX keeps proto parameters (e.g. the
            Trainer's train_args) as JSON text, so they can be set too.
        deployers: each is called with the Trainer's model channel and the
            ModelValidator's blessing channel and returns one more
            component that deploys a blessed model.

    Example:

    ```python
    overrides = PipelineOverrides(
        runtime_parameters={"max_perplexity": "ModelValidator.max_perplexity"}
    )
    pipeline = create_pipeline(config, overrides=overrides)
    ```
    """

    trainer_class: type = tfx.components.Trainer
    trainer_custom_config: Mapping[str, Any] = dataclasses.field(
        default_factory=dict
    )
    runtime_parameters: Mapping[str, str] = dataclasses.field(
        default_factory=dict
    )
    deployers: tuple[Callable[..., Any], ...] = ()


def _bind_runtime_parameters(
    components: list, runtime_parameters: Mapping[str, str]
) -> None:
    """Replaces execution parameters by runtime parameters, in place."""
    by_id = {component.id: component for component in components}
    for name, target in runtime_parameters.items():
        component_id, _, key = target.partition(".")
        component = by_id.get(component_id)
        if component is None or key not in component.exec_properties:
            raise ValueError(
                f"runtime parameter {name!r} targets {target!r}, which is "
                "not an execution parameter of this pipeline; use "
                "'ComponentId.parameter' with a component among "
                f"{', '.join(sorted(by_id))}."
            )
        value = component.exec_properties[key]
        if type(value) not in (int, float, str):
            raise ValueError(
                f"runtime parameter {name!r}: {target} holds "
                f"{type(value).__name__} {value!r}; only int, float and str "
                "parameters can be set at run time."
            )
        component.exec_properties[key] = tfx.dsl.experimental.RuntimeParameter(
            name=name, ptype=type(value), default=value
        )


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config=None,
    overrides: PipelineOverrides | None = None,
) -> tfx.dsl.Pipeline:
    """Builds the TFX pipeline for `config` (a pure function).

    Args:
        config: a validated PipelineConfig.
        metadata_connection_config: MLMD connection (None on Vertex AI).
        overrides: what a non-local runner changes (None: nothing).

    Returns:
        The pipeline: TextExampleGen -> StatisticsGen -> SchemaGen ->
        ExampleValidator -> DataGate -> Transform -> Trainer ->
        ModelValidator (against the last blessed model) -> TFLiteExport ->
        ServingPusher, then the overrides' deployers.

    Raises:
        ValueError: a runtime parameter names no execution parameter.
    """
    overrides = overrides or PipelineOverrides()
    family = get_family(config.family)
    ingest = config.ingest
    example_gen = TextExampleGen(
        input_patterns=list(ingest.input_patterns),
        input_format=ingest.input_format,
        text_field=ingest.text_field,
        target_field=config.target_field,
        text_unit=ingest.text_unit,
        min_chars=ingest.min_chars,
        max_chars=ingest.max_chars,
        eval_fraction=ingest.eval_fraction,
        strict=ingest.strict,
    )
    examples = example_gen.outputs[EXAMPLES_KEY]
    data_steps = [example_gen]
    if family.sentence_pairs:
        # Pairs are what Transform and the Trainer read, so they are what
        # the statistics, schema and gate check.
        pairs = SentencePairGen(
            examples=examples,
            target_length=family.load().sequence_length(config) - 3,
            seed=config.train.seed,
        )
        data_steps.append(pairs)
        examples = pairs.outputs[SENTENCE_PAIRS_KEY]
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs[STATISTICS_KEY],
        infer_feature_shape=True,
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs[STATISTICS_KEY],
        schema=schema_gen.outputs[SCHEMA_KEY],
    )
    data_gate = DataGate(
        statistics=statistics_gen.outputs[STATISTICS_KEY],
        anomalies=example_validator.outputs[ANOMALIES_KEY],
    )
    transform = tfx.components.Transform(
        examples=examples,
        schema=schema_gen.outputs[SCHEMA_KEY],
        preprocessing_fn=family.preprocessing_fn,
        splits_config=tfx.proto.SplitsConfig(
            analyze=["train"], transform=["train", "eval"]
        ),
        custom_config=family.load().transform_config(config),
    )
    transform.add_upstream_node(data_gate)
    transformed = transform.outputs[TRANSFORMED_EXAMPLES_KEY]

    trainer = overrides.trainer_class(
        run_fn=RUN_FN,
        examples=transformed,
        transform_graph=transform.outputs[TRANSFORM_GRAPH_KEY],
        schema=schema_gen.outputs[SCHEMA_KEY],
        train_args=tfx.proto.TrainArgs(num_steps=config.train.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.train.eval_steps),
        custom_config={
            "family": config.family,
            "train": dataclasses.asdict(config.trainer_config),
            "checkpoint_root": config.checkpoint_root,
            # val_nll on the units ModelValidator scores.
            "eval_units": config.validation.max_eval_windows,
            # Cached Trainer runs are reused only by the same textmill.
            "textmill_version": textmill.__version__,
            **overrides.trainer_custom_config,
        },
    )
    latest_blessed = tfx.dsl.Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing
        ),
    ).with_id("latest_blessed_model_resolver")
    validator = ModelValidator(
        examples=transformed,
        model=trainer.outputs[MODEL_KEY],
        baseline_model=latest_blessed.outputs[MODEL_KEY],
        max_perplexity=config.validation.max_perplexity,
        min_accuracy=config.validation.min_accuracy,
        min_rouge_l=config.validation.min_rouge_l,
        max_regression=config.validation.max_regression,
        max_eval_windows=config.validation.max_eval_windows,
        min_baseline_gain=config.validation.min_baseline_gain
        if config.validation.enforce_baseline
        else None,
        confidence=config.validation.confidence,
    )
    tflite = TFLiteExport(
        model=trainer.outputs[MODEL_KEY],
        examples=transformed,
        variants=config.export.tflite_variants,
        parity_windows=config.export.parity_windows,
    )
    pusher = ServingPusher(
        model=trainer.outputs[MODEL_KEY],
        model_blessing=validator.outputs[BLESSING_KEY],
        tflite_model=tflite.outputs[TFLITE_MODEL_KEY],
        serving_dir=config.serving_dir,
        model_name=config.model_name,
    )
    components = [
        *data_steps,
        statistics_gen,
        schema_gen,
        example_validator,
        data_gate,
        transform,
        trainer,
        latest_blessed,
        validator,
        tflite,
        pusher,
    ] + [
        deploy(trainer.outputs[MODEL_KEY], validator.outputs[BLESSING_KEY])
        for deploy in overrides.deployers
    ]
    _bind_runtime_parameters(components, overrides.runtime_parameters)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
