"""`textmill serve` and `textmill generate`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable

from textmill.serving.request_limits import RequestLimits
from textmill.serving.serving_error import ServingError
from textmill.serving.signatures import GENERATE


def _setting(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"--setting takes NAME=VALUE (e.g. temperature=0.7), got {text!r}"
        )
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Adds the `serve` and `generate` commands.

    Args:
        subparsers: the `textmill` parser's subparsers.

    Returns:
        command name -> handler taking the parsed arguments, returning the
        exit status.
    """
    serve = subparsers.add_parser(
        "serve",
        help="serve SERVING_DIR/MODEL/VERSION over TF Serving's REST API",
    )
    serve.add_argument(
        "--model-dir",
        required=True,
        metavar="SERVING_DIR",
        help="directory of MODEL_NAME/VERSION/ SavedModels (local or gs://)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: loopback only)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8501,
        help="TCP port; 0 picks a free one (default: 8501)",
    )
    serve.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help="rescan SERVING_DIR for versions this often",
    )
    serve.add_argument(
        "--num-versions",
        type=int,
        default=1,
        help="newest versions kept loaded per model",
    )
    serve.add_argument(
        "--max-request-bytes",
        type=int,
        default=10 * 2**20,
        help="largest request body accepted (default: 10 MiB)",
    )
    serve.add_argument(
        "--max-batch-size",
        type=int,
        default=256,
        help="largest batch accepted per request",
    )
    defaults = RequestLimits()
    limits = {
        "--max-string-bytes": (
            defaults.max_string_bytes,
            "most UTF-8 bytes in one string of a request (a prompt)",
        ),
        "--max-new-tokens": (
            defaults.max_new_tokens,
            "max_new_tokens is accepted in [1, this]",
        ),
        "--max-num-beams": (
            defaults.max_num_beams,
            "num_beams is accepted in [1, this]",
        ),
        "--max-top-k": (defaults.max_top_k, "top_k is accepted in [0, this]"),
        "--max-decode-rows": (
            defaults.max_decode_rows,
            "most rows per decode step: batch x num_beams, batch x "
            "contrastive top_k",
        ),
    }
    for flag, (default, text) in limits.items():
        serve.add_argument(
            flag, type=int, default=default, help=f"{text} (default: {default})"
        )
    serve.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="model calls run at once (default: half the cores, at least 1)",
    )
    serve.add_argument(
        "--max-queue-seconds",
        type=float,
        default=5.0,
        help="longest wait for a model slot before 503 (default: 5)",
    )
    serve.add_argument(
        "--request-timeout",
        type=float,
        default=120.0,
        help="seconds from a request's arrival to its answer before 504 "
        "(default: 120)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=15.0,
        help="seconds an idle or slow connection stays open (default: 15)",
    )
    serve.add_argument(
        "--auth-token-file",
        help="file holding a token every request must send as "
        "'Authorization: Bearer TOKEN'",
    )

    generate = subparsers.add_parser(
        "generate", help="continue prompts with a served model"
    )
    generate.add_argument("prompts", nargs="+", metavar="PROMPT")
    generate.add_argument(
        "--url", required=True, help="server URL, e.g. http://127.0.0.1:8501"
    )
    generate.add_argument("--model", required=True, help="served model name")
    generate.add_argument(
        "--version", type=int, help="model version (default: the newest)"
    )
    generate.add_argument("--max-new-tokens", type=int, default=32)
    generate.add_argument("--signature-name", default=GENERATE)
    generate.add_argument(
        "--setting",
        action="append",
        type=_setting,
        default=[],
        metavar="NAME=VALUE",
        help="another input of the signature (a sampler setting); VALUE is "
        "read as JSON when it parses; repeatable",
    )
    generate.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds the whole call may take (default: 120)",
    )
    generate.add_argument(
        "--json",
        action="store_true",
        help='print {"completions": [...]} instead of text',
    )
    return {"serve": _cmd_serve, "generate": _cmd_generate}


def _cmd_serve(args: argparse.Namespace) -> int:
    from textmill.serving.model_repository import ModelRepository
    from textmill.serving.model_server import ModelServer

    logging.getLogger("textmill.serving").setLevel(logging.INFO)
    try:
        auth_token = None
        if args.auth_token_file:
            with open(args.auth_token_file, encoding="utf-8") as handle:
                auth_token = handle.read().strip()
            if not auth_token:
                raise ValueError(
                    f"--auth-token-file {args.auth_token_file} is empty; "
                    "write the token into it."
                )
        server = ModelServer(
            ModelRepository(args.model_dir, num_versions=args.num_versions),
            host=args.host,
            port=args.port,
            poll_seconds=args.poll_seconds,
            max_request_bytes=args.max_request_bytes,
            max_batch_size=args.max_batch_size,
            limits=RequestLimits(
                max_string_bytes=args.max_string_bytes,
                max_new_tokens=args.max_new_tokens,
                max_num_beams=args.max_num_beams,
                max_top_k=args.max_top_k,
                max_decode_rows=args.max_decode_rows,
            ),
            max_concurrent=args.max_concurrent,
            max_queue_seconds=args.max_queue_seconds,
            request_timeout=args.request_timeout,
            idle_timeout=args.idle_timeout,
            auth_token=auth_token,
        )
        server.bind()
    except (OSError, ValueError) as e:  # bad option, no dir, port taken
        print(f"textmill serve: {e}", file=sys.stderr)
        return 2
    models = ", ".join(server.repository.model_names) or "none yet"
    print(
        f"Serving {args.model_dir} (models: {models}) at {server.url}",
        flush=True,
    )

    def _terminate(signum, frame):
        server.request_stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from textmill.serving.client import ServingClient

    client = ServingClient(args.url, args.model, args.version, args.timeout)
    try:
        completions = client.generate(
            args.prompts,
            args.max_new_tokens,
            signature_name=args.signature_name,
            **dict(args.setting),
        )
    except ServingError as e:
        print(f"textmill generate: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"completions": completions}))
    else:
        print(
            "\n\n".join(
                p + c for p, c in zip(args.prompts, completions, strict=True)
            )
        )
    return 0
