"""The run summary's lines about the LiteRT-LM bundles."""

from __future__ import annotations


def litert_lm_lines(section: dict | None) -> list[str]:
    """Console lines for the `litert_lm` section of the TFLite metadata.

    Args:
        section: what `export_litert_lm` returned (None: no section).

    Returns:
        One line per bundle, or one saying why none was built.
    """
    if not section:
        return []
    if section.get("skipped"):
        return [f"  litert-lm: not built - {section['skipped']}"]
    lines = []
    for variant, info in section["variants"].items():
        parity, speed = info["parity"], info["tokens_per_s"]
        lines.append(
            f"  litert-lm {variant}: {info['bytes']} bytes, greedy text "
            f"identical for {parity['identical']} of {parity['prompts']} "
            f"prompts (token agreement {parity['token_agreement']:.2f}); "
            f"prefill {speed['prefill_tokens_per_s']:.0f} tokens/s, decode "
            f"{speed['decode_tokens_per_s']:.0f} tokens/s"
        )
    return lines
