"""TF Serving's REST JSON <-> numpy tensors, driven by signature metadata.

The rules follow TF Serving's `json_tensor.cc`:

- Requests: `{"signature_name": ..., "instances": [...]}` (row format: one
  value, or one object keyed by input name, per example; the server stacks
  them into a batch) or `{"inputs": value | {name: value}}` (columnar: whole
  tensors). JSON values must match the input's dtype (numbers for numeric
  inputs, integers for integer inputs, `true`/`false` for booleans, strings
  or `{"b64": ...}` for strings) and form a rectangular nested list.
- Responses: row requests get `{"predictions": [...]}` (a value per example,
  or an object per example when there are several outputs); columnar ones
  get `{"outputs": value | {name: value}}`. String outputs whose name ends in
  `_bytes` are written as `{"b64": ...}`; other strings as text. Floats are
  written in their shortest round-tripping form, `NaN`/`Infinity` as such.

Where TF Serving would write bytes that are not valid UTF-8 into the JSON
text (making it unparseable), text outputs carry U+FFFD instead.

Signatures are read in TF Serving's metadata JSON form (`{"inputs": {name:
{"dtype": "DT_FLOAT", "tensor_shape": {...}}}, "outputs": {...}}`), so this
module needs numpy only.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

from textmill.serving.serving_error import ServingError

INSTANCES_KEY = "instances"
INPUTS_KEY = "inputs"
PREDICTIONS_KEY = "predictions"
OUTPUTS_KEY = "outputs"
B64_KEY = "b64"
_BYTES_SUFFIX = "_bytes"
# The deepest list nesting decoded (TensorFlow's tensors have at most 254
# dimensions; numpy's at most 32).
MAX_RANK = 32

_NUMPY_DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_HALF": np.float16,
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
    "DT_STRING": np.object_,
}
_KIND_WORDS = {
    "b": "booleans",
    "i": "integers",
    "u": "integers",
    "f": "decimal numbers",
    "U": "strings",
}


# Requests.


def parse_json_object(raw: bytes) -> dict:
    """Parses a request body that must be one JSON object.

    Raises:
        ServingError: 400 when the body is empty, not JSON or not an object.
    """
    if not raw:
        raise ServingError(400, "JSON Parse error: the request body is empty.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ServingError(400, f"JSON Parse error: {e}") from None
    if not isinstance(body, dict):
        raise ServingError(
            400,
            f"the request body must be a JSON object, got a JSON "
            f"{type(body).__name__}.",
        )
    return body


def _is_b64(value) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(value.get(B64_KEY), str)
    )


def _spec(info: dict) -> tuple[str, list[int] | None]:
    """TensorInfo JSON -> (dtype name, shape with -1 for unknown or None)."""
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return info["dtype"], None
    return info["dtype"], [int(d["size"]) for d in shape.get("dim", [])]


def format_spec(info: dict) -> str:
    """`DT_FLOAT [-1, 3]`: a TensorInfo for error messages."""
    dtype, shape = _spec(info)
    return f"{dtype} {'[?]' if shape is None else shape}"


def _describe(signature: dict, signature_name: str) -> str:
    inputs = ", ".join(
        f"{name} ({format_spec(info)})"
        for name, info in sorted(signature["inputs"].items())
    )
    return f"signature '{signature_name}' takes: {inputs}"


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dense_shape(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _decode_string(value, name: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ServingError(
                400,
                f"input '{name}': the string has a lone surrogate "
                f"(\\u{ord(value[e.start]):x}) at character {e.start}, which "
                "is not Unicode text; send valid UTF-16 pairs or "
                '{"b64": "<base64>"} for raw bytes.',
            ) from None
    if _is_b64(value):
        try:
            return base64.b64decode(value[B64_KEY], validate=True)
        except binascii.Error:
            raise ServingError(
                400,
                f"input '{name}': {_short(value)} is not valid base64.",
            ) from None
    raise ServingError(
        400,
        f"input '{name}': JSON value {_short(value)} is not of expected type "
        'DT_STRING (send a string or {"b64": "<base64>"}).',
    )


def _fill_strings(value, level, shape, out, name) -> None:
    if isinstance(value, list):
        if level >= len(shape) or len(value) != shape[level]:
            raise ServingError(
                400,
                f"input '{name}' is not a rectangular list: a list of "
                f"{len(value)} at depth {level}, expected shape {shape}.",
            )
        for item in value:
            _fill_strings(item, level + 1, shape, out, name)
    elif level != len(shape):
        raise ServingError(
            400,
            f"input '{name}' is not a rectangular list: value "
            f"{_short(value)} at depth {level}, expected shape {shape}.",
        )
    else:
        out.append(_decode_string(value, name))


def _decode_numeric(value, dtype_name: str, name: str) -> np.ndarray:
    dtype = np.dtype(_NUMPY_DTYPES[dtype_name])
    try:
        given = np.asarray(value)
    except ValueError:
        given = None
    if given is None or given.dtype == np.object_:
        raise ServingError(
            400,
            f"input '{name}' is not a rectangular list of numbers: "
            f"{_short(value)}.",
        )
    if dtype.kind == "f":
        allowed, wanted = "iuf", "numbers"
    elif dtype.kind == "b":
        allowed, wanted = "b", "booleans"
    else:
        allowed, wanted = "iu", "integers"
    if given.size and given.dtype.kind not in allowed:
        raise ServingError(
            400,
            f"input '{name}' takes {dtype_name} ({wanted}); got "
            f"{_short(value)}, which holds "
            f"{_KIND_WORDS.get(given.dtype.kind, given.dtype.name)}.",
        )
    if given.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if given.min() < info.min or given.max() > info.max:
            raise ServingError(
                400,
                f"input '{name}': values outside the range of {dtype_name} "
                f"[{info.min}, {info.max}].",
            )
    with np.errstate(over="ignore"):
        array = given.astype(dtype)
    if dtype.kind == "f" and np.any(np.isinf(array) & np.isfinite(given)):
        raise ServingError(
            400,
            f"input '{name}': a value does not fit in {dtype_name} without "
            "loss of precision.",
        )
    return array


def decode_tensor(value, info: dict, name: str) -> np.ndarray:
    """One input's JSON value -> a numpy array of the input's dtype.

    Args:
        value: the JSON value (scalar, nested list, `{"b64": ...}`).
        info: the input's TensorInfo in metadata JSON form.
        name: the input's name, for error messages.

    Returns:
        The array (object array of `bytes` for DT_STRING).

    Raises:
        ServingError: 400 on a dtype the REST API cannot carry, a value of
            the wrong JSON type, or a ragged list.
    """
    dtype_name, _ = _spec(info)
    depth = len(_dense_shape(value))
    if depth > MAX_RANK:
        raise ServingError(
            400,
            f"input '{name}' is a list nested {depth} deep; tensors here "
            f"have at most {MAX_RANK} dimensions.",
        )
    if dtype_name not in _NUMPY_DTYPES:
        raise ServingError(
            400,
            f"input '{name}' has dtype {dtype_name}, which the REST API "
            "cannot carry; use a signature with numeric, bool or string "
            "inputs.",
        )
    if dtype_name != "DT_STRING":
        return _decode_numeric(value, dtype_name, name)
    shape = _dense_shape(value)
    flat: list[bytes] = []
    _fill_strings(value, 0, shape, flat, name)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def decode_inputs(
    columns: dict,
    signature: dict,
    signature_name: str,
    max_batch_size: int,
    row_format: bool = False,
) -> dict[str, np.ndarray]:
    """Checks and converts named JSON values into the signature's inputs.

    Args:
        columns: input name -> JSON value (whole tensors).
        signature: the SignatureDef in metadata JSON form.
        signature_name: its name, for error messages.
        max_batch_size: the largest first dimension accepted on an input
            whose first dimension is not fixed.
        row_format: the values came from `instances` (changes the hint
            given when a shape does not match).

    Returns:
        input name -> array of the input's dtype and shape.

    Raises:
        ServingError: 400 on unknown or missing inputs, wrong dtypes or
            shapes, or a batch over `max_batch_size`.
    """
    expected = signature["inputs"]
    unknown = sorted(set(columns) - set(expected))
    missing = sorted(set(expected) - set(columns))
    if unknown:
        raise ServingError(
            400,
            f"unknown input(s) {', '.join(map(repr, unknown))}; "
            f"{_describe(signature, signature_name)}.",
        )
    if missing:
        raise ServingError(
            400,
            f"missing input(s) {', '.join(map(repr, missing))}; "
            f"{_describe(signature, signature_name)}.",
        )
    arrays = {}
    for name, info in expected.items():
        array = decode_tensor(columns[name], info, name)
        _, shape = _spec(info)
        if shape is not None and (
            array.ndim != len(shape)
            or any(
                d not in (-1, a)
                for d, a in zip(shape, array.shape, strict=True)
            )
        ):
            hint = ""
            if row_format and len(shape) != array.ndim:
                hint = (
                    " Row-format 'instances' add a batch dimension to every "
                    "input; send this signature the columnar 'inputs' form."
                )
            raise ServingError(
                400,
                f"input '{name}' of signature '{signature_name}' takes "
                f"{format_spec(info)}, got shape {list(array.shape)}.{hint}",
            )
        batched = shape is None or (len(shape) > 0 and shape[0] == -1)
        if batched and array.ndim and array.shape[0] > max_batch_size:
            raise ServingError(
                400,
                f"input '{name}' has a batch of {array.shape[0]}, over the "
                f"server's limit of {max_batch_size} (--max-batch-size); "
                "split the request.",
            )
        arrays[name] = array
    return arrays


def _instance_columns(instances: list, names: list[str]) -> dict:
    if not isinstance(instances, list) or not instances:
        raise ServingError(
            400, "'instances' must be a non-empty list, one item per example."
        )
    first = instances[0]
    objects = isinstance(first, dict) and not _is_b64(first)
    if not objects:
        if len(names) > 1:
            raise ServingError(
                400,
                f"'instances' is a plain list, but the signature takes "
                f"{len(names)} inputs ({', '.join(names)}): send one object "
                "per example keyed by input name.",
            )
        for i, item in enumerate(instances):
            if isinstance(item, dict) and not _is_b64(item):
                raise ServingError(
                    400, f"instance {i} is an object; instance 0 is not."
                )
        return {names[0]: instances}
    for i, item in enumerate(instances):
        if not isinstance(item, dict) or _is_b64(item):
            raise ServingError(
                400, f"instance {i} is not an object; instance 0 is."
            )
        if set(item) != set(names):
            raise ServingError(
                400,
                f"instance {i} has keys {sorted(item)}; each instance must "
                f"have exactly the inputs {names}.",
            )
    return {name: [item[name] for item in instances] for name in names}


def decode_predict_request(
    body: dict, signature: dict, signature_name: str, max_batch_size: int
) -> tuple[dict[str, np.ndarray], bool]:
    """A `:predict` request body -> (inputs, whether it is row format).

    Raises:
        ServingError: 400 when the body does not fit the signature.
    """
    if (INSTANCES_KEY in body) == (INPUTS_KEY in body):
        raise ServingError(
            400,
            "send exactly one of 'instances' (row format) or 'inputs' "
            "(columnar format).",
        )
    names = sorted(signature["inputs"])
    if not names:
        raise ServingError(
            400, f"signature '{signature_name}' takes no inputs."
        )
    if INSTANCES_KEY in body:
        columns = _instance_columns(body[INSTANCES_KEY], names)
        inputs = decode_inputs(
            columns, signature, signature_name, max_batch_size, True
        )
        return inputs, True
    value = body[INPUTS_KEY]
    if isinstance(value, dict) and not _is_b64(value):
        columns = value
    elif len(names) > 1:
        raise ServingError(
            400,
            f"'inputs' is a plain value, but the signature takes "
            f"{len(names)} inputs ({', '.join(names)}): send an object "
            "keyed by input name.",
        )
    else:
        columns = {names[0]: value}
    inputs = decode_inputs(columns, signature, signature_name, max_batch_size)
    return inputs, False


# Responses. Tensors are written straight to JSON text so that floats keep
# their short form and large outputs avoid a round trip through lists.


def is_bytes_name(name: str) -> bool:
    """TF Serving's rule: string outputs named `*_bytes` are written b64."""
    return name.endswith(_BYTES_SUFFIX)


def _string_text(value: bytes, as_b64: bool) -> str:
    if as_b64:
        encoded = base64.b64encode(value).decode("ascii")
        return f'{{"{B64_KEY}": "{encoded}"}}'
    return json.dumps(value.decode("utf-8", errors="replace"))


def _leaf_texts(array: np.ndarray, name: str, as_b64: bool) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype.itemsize < 4:
            array = array.astype(np.float32)
        texts = array.astype(str)
        texts = np.where(np.isnan(array), "NaN", texts)
        return np.where(
            np.isinf(array),
            np.where(array > 0, "Infinity", "-Infinity"),
            texts,
        )
    if kind in "iu":
        return array.astype(str)
    if kind == "b":
        return np.where(array, "true", "false")
    if kind in "OS":
        texts = [_string_text(bytes(v), as_b64) for v in array.ravel()]
        out = np.empty(len(texts), dtype=object)
        out[:] = texts
        return out.reshape(array.shape)
    raise ServingError(
        500,
        f"output '{name}' has dtype {array.dtype}, which the REST API cannot "
        "carry; export the signature with a numeric, bool or string output.",
    )


def _nest(texts: np.ndarray) -> str:
    if texts.ndim == 0:
        return str(texts[()])
    if texts.ndim == 1:
        return "[" + ",".join(texts.tolist()) + "]"
    return "[" + ",".join(_nest(t) for t in texts) + "]"


def encode_tensor(array: np.ndarray, bytes_as_b64: bool = False) -> str:
    """A numpy array -> its JSON text (nested lists, or a scalar).

    Args:
        array: numeric, bool, or object/bytes array of strings.
        bytes_as_b64: write strings as `{"b64": ...}` instead of text.

    Raises:
        ServingError: 500 for dtypes JSON cannot carry (complex, ...).
    """
    return _nest(_leaf_texts(np.asarray(array), "", bytes_as_b64))


def encode_object(fields: dict[str, str]) -> str:
    """{key: JSON text} -> the JSON text of one object."""
    return (
        "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"
    )


def encode_predict_response(
    outputs: dict[str, np.ndarray], row_format: bool
) -> str:
    """A signature's outputs -> TF Serving's `:predict` response text.

    Raises:
        ServingError: 400 when a row-format response is asked for outputs
            without a common batch dimension.
    """
    names = sorted(outputs)
    texts = {
        name: _leaf_texts(np.asarray(outputs[name]), name, is_bytes_name(name))
        for name in names
    }
    if not row_format:
        if len(names) == 1:
            return encode_object({OUTPUTS_KEY: _nest(texts[names[0]])})
        body = encode_object({name: _nest(texts[name]) for name in names})
        return encode_object({OUTPUTS_KEY: body})
    batch = None
    for name in names:
        if texts[name].ndim == 0:
            raise ServingError(
                400,
                f"output '{name}' is a scalar, so the row format cannot "
                "split it per example; send the columnar 'inputs' form.",
            )
        if batch is not None and texts[name].shape[0] != batch:
            raise ServingError(
                400,
                f"output '{name}' has batch size {texts[name].shape[0]}, "
                f"others {batch}; send the columnar 'inputs' form.",
            )
        batch = texts[name].shape[0]
    if len(names) == 1:
        return encode_object({PREDICTIONS_KEY: _nest(texts[names[0]])})
    rows = [
        encode_object({name: _nest(texts[name][i, ...]) for name in names})
        for i in range(batch)
    ]
    return encode_object({PREDICTIONS_KEY: "[" + ",".join(rows) + "]"})
