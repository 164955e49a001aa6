"""Greedy parity of the LiteRT-LM runtime's completions with reference
token ids, through their text (no TensorFlow: bench/generate's driver
uses it too)."""

from __future__ import annotations


def greedy_parity(
    replies: list[dict],
    expected_ids: list[list[int]],
    stop_token_ids: tuple[int, ...],
    tokenizer,
) -> dict:
    """Compares the runtime's completions with the reference tokens.

    The runtime returns text, not ids, and re-tokenizing a completion does
    not give back the ids that produced it (BPE merges across the
    generated tokens), so tokens are compared through their text.

    Args:
        replies: `run_litert_lm`'s replies.
        expected_ids: per prompt the reference's new ids.
        stop_token_ids: ids that end a completion (not part of its text).
        tokenizer: the bundle's `tokenizers.Tokenizer`.

    Returns:
        `prompts`; `identical`: prompts whose completion text equals the
        reference's; `token_agreement`: the share of reference tokens (up
        to the stop token) before the completions differ: the
        longest run of leading reference tokens whose text starts the
        runtime's completion.
    """
    identical = same = total = 0
    for reply, ids in zip(replies, expected_ids, strict=True):
        for end, token in enumerate(ids):
            if token in stop_token_ids:
                ids = ids[:end]
                break
        identical += reply["text"] == tokenizer.decode(ids)
        same += max(
            k
            for k in range(len(ids) + 1)
            if reply["text"].startswith(tokenizer.decode(ids[:k]))
        )
        total += len(ids)
    return {
        "prompts": len(replies),
        "identical": identical,
        "token_agreement": same / max(total, 1),
    }
