"""How a `generate` signature maps onto the `:generate` REST route.

Shared by the server (which answers `:generate`) and the client (which
falls back to `:predict` on a TF Serving that has no such route). Both read
the signature in TF Serving's metadata JSON form, so this module needs only
the standard library.

Request body of `POST /v1/models/NAME[/versions/V]:generate`:

    {"prompts": ["Once upon", ...], "max_new_tokens": 32,
     "signature_name": "generate",        # optional
     "temperature": 0.7, ...}             # any other input of the signature

Response: `{"completions": [...]}` plus the signature's other outputs under
their own names (columnar, as `:predict` writes them).
"""

from __future__ import annotations

# The `Server` header of textmill's model server: a client seeing it knows
# the `:generate` route exists (TF Serving answers it with 400).
SERVER_SOFTWARE = "textmill-model-server"
PROMPTS_KEY = "prompts"
COMPLETIONS_KEY = "completions"
SIGNATURE_NAME_KEY = "signature_name"
_PROMPT_INPUT = "prompt"
_COMPLETION_OUTPUT = "completion"
_STRING = "DT_STRING"


def _pick_string_tensor(
    tensors: dict, preferred: str, what: str, signature_name: str
) -> str:
    if preferred in tensors:
        return preferred
    strings = sorted(
        name for name, info in tensors.items() if info.get("dtype") == _STRING
    )
    if len(strings) != 1:
        listed = ", ".join(strings) or "none"
        raise ValueError(
            f"signature '{signature_name}' has no {what} named '{preferred}' "
            f"and {len(strings)} string {what}s ({listed}); name the "
            f"{what} '{preferred}' when exporting."
        )
    return strings[0]


def generate_io_names(signature: dict, signature_name: str) -> tuple[str, str]:
    """Finds the prompt input and the completion output of a signature.

    The prompt input is the input named `prompt`, else the only string
    input; the completion output is the output named `completion`, else the
    only string output.

    Args:
        signature: one SignatureDef in TF Serving's metadata JSON form
            (`{"inputs": {name: {"dtype": ...}}, "outputs": {...}}`).
        signature_name: its name, for error messages.

    Returns:
        (prompt input name, completion output name).

    Raises:
        ValueError: the signature has no unambiguous string input or output.
    """
    prompt = _pick_string_tensor(
        signature.get("inputs", {}), _PROMPT_INPUT, "input", signature_name
    )
    completion = _pick_string_tensor(
        signature.get("outputs", {}),
        _COMPLETION_OUTPUT,
        "output",
        signature_name,
    )
    return prompt, completion
