import pytest

from textmill.config import (
    DEFAULT_LEARNING_RATE,
    ConfigError,
    PipelineConfig,
    config_from_dict,
    load_config,
    with_overrides,
)


def test_defaults_name_model_and_pipeline_after_family():
    config = PipelineConfig()
    assert config.model_name == "distilgpt2"
    assert config.pipeline_name == "textmill-distilgpt2"


def test_learning_rate_left_at_zero_takes_the_familys_default():
    nsp = with_overrides(PipelineConfig(), top={"family": "bert_nsp"})
    assert nsp.train.learning_rate == 0
    assert nsp.trainer_config.learning_rate == 3e-4
    assert PipelineConfig().trainer_config.learning_rate == (
        DEFAULT_LEARNING_RATE
    )
    assert PipelineConfig().train.peak_learning_rate == DEFAULT_LEARNING_RATE
    chosen = with_overrides(nsp, train={"learning_rate": 1e-3})
    assert chosen.trainer_config.learning_rate == 1e-3
    assert chosen.trainer_config == chosen.train


def test_round_trip_through_dict():
    config = with_overrides(
        PipelineConfig(),
        ingest={"input_patterns": ["a/*.txt", "gs://b/*.jsonl"]},
        train={"train_steps": 7},
    )
    assert config_from_dict(config.to_dict()) == config
    assert config.ingest.input_patterns == ("a/*.txt", "gs://b/*.jsonl")


def test_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "family: distilgpt2\n"
        "ingest:\n  input_patterns: [x.txt]\n  eval_fraction: 0.2\n"
        "train:\n  preset: tiny\n  batch_size: 4\n"
    )
    config = load_config(str(path)).validate()
    assert config.ingest.eval_fraction == 0.2
    assert config.train.batch_size == 4


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat.*train"):
        load_config(str(path))


@pytest.mark.parametrize(
    "section, values, match",
    [
        ("ingest", {"eval_fraction": 1.5}, "eval_fraction"),
        ("ingest", {"input_format": "xml"}, "input_format"),
        ("train", {"batch_size": 0}, "batch_size"),
        ("validation", {"max_perplexity": 0.5}, "max_perplexity"),
        ("export", {"tflite_variants": ["int4"]}, "tflite_variants"),
        ("tokenizer", {"vocab_size": 100}, "vocab_size"),
        ("train", {"learning_rate": -1e-3}, "learning_rate"),
        ("train", {"distill_temperature": 0.0}, "distill_temperature"),
        ("train", {"distill_kl_weight": -1.0}, "distill_kl_weight"),
        (
            "train",
            {
                "distill_kl_weight": 0.0,
                "distill_lm_weight": 0.0,
                "distill_cosine_weight": 0.0,
            },
            "nothing to learn",
        ),
        (
            "train",
            {"distill_from": "presets/gpt2", "init_from": "presets/gpt2"},
            "drop --init-from",
        ),
    ],
)
def test_validation_names_the_field(section, values, match):
    base = with_overrides(PipelineConfig(), ingest={"input_patterns": ["x"]})
    config = with_overrides(base, **{section: values})
    with pytest.raises(ConfigError, match=match):
        config.validate()


def test_distillation_is_for_distilgpt2_students():
    config = with_overrides(
        PipelineConfig(),
        top={"family": "longformer"},
        ingest={"input_patterns": ["x"]},
        train={"distill_from": "presets/gpt2"},
    )
    with pytest.raises(ConfigError, match="--family distilgpt2"):
        config.validate()


def test_missing_data_says_how_to_fix():
    with pytest.raises(ConfigError, match="--data"):
        PipelineConfig().validate()


def test_changing_family_renames_derived_names_only():
    config = with_overrides(PipelineConfig(), top={"family": "longformer"})
    assert config.model_name == "longformer"
    assert config.pipeline_name == "textmill-longformer"
    named = with_overrides(PipelineConfig(), top={"model_name": "mine"})
    renamed = with_overrides(named, top={"family": "longformer"})
    assert renamed.model_name == "mine"


def test_preset_aliases_and_unknown_preset():
    from textmill.families import preset_config

    presets = {"bert_tiny": {"config": {"num_layers": 2}}}
    config = preset_config("tiny", {"tiny": "bert_tiny"}, presets, "BERT")
    config["num_layers"] = 9  # a copy: the table stays as it was
    assert presets["bert_tiny"]["config"]["num_layers"] == 2
    with pytest.raises(ValueError, match="not a BERT preset.*tiny"):
        preset_config("huge", {"tiny": "bert_tiny"}, presets, "BERT")
