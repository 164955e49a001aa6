"""The preset names a family declares (checked before a run starts) are
exactly those its model code accepts."""

import pytest

from textmill.families import FAMILIES, preset_config


def _accepted(family_name: str) -> set[str]:
    if family_name in ("distilgpt2", "summarization"):
        from textmill.trainer.models.gpt2 import GPT2_PRESETS

        return set(GPT2_PRESETS)
    if family_name == "translation":
        from textmill.families.translation.family import (
            BART_ALIASES,
            BART_PRESETS,
        )

        names = {*BART_ALIASES, *BART_PRESETS}
        for name in names:
            preset_config(name, BART_ALIASES, BART_PRESETS, family_name)
        return names
    if family_name in ("longformer", "longformer_classifier"):
        from textmill.families.longformer.family import PRESETS
        from textmill.trainer.models.longformer.longformer_presets import (
            backbone_presets,
        )
    else:
        from textmill.families.bert_nsp.family import PRESETS
        from textmill.trainer.models.bert.bert_presets import (
            backbone_presets,
        )
    for name in [*PRESETS, *backbone_presets]:
        preset_config(name, PRESETS, backbone_presets, family_name)
    return {*PRESETS, *backbone_presets}


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_declared_presets_are_the_accepted_ones(family_name):
    assert set(FAMILIES[family_name].presets) == _accepted(family_name)
