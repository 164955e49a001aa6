"""The `textmill` command."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys

from textmill.config import ConfigError, PipelineConfig
from textmill.pipelines.config_flags import add_config_flags, config_from_args
from textmill.pipelines.console import default_log_path, quiet_console
from textmill.pipelines.preflight import preflight
from textmill.pipelines.vertex_cli import register as register_vertex
from textmill.serving.serve_cli import register as register_serving
from textmill.trainer.convert.convert_cli import register as register_convert


def _add_run_parser(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run the whole pipeline locally (LocalDagRunner)"
    )
    add_config_flags(run)
    run.add_argument("--work-dir", help="pipeline root, metadata, summary")
    run.add_argument(
        "--beam-arg",
        action="append",
        metavar="ARG",
        help="Beam pipeline argument, replaces the defaults; repeatable",
    )


def _config_from_args(args) -> PipelineConfig:
    return config_from_args(
        args, work_dir=args.work_dir, beam_pipeline_args=args.beam_arg
    ).validate()


def _run(config: PipelineConfig, console, log_file: str | None) -> dict:
    # TFX and TensorFlow load here, inside the quiet console if there is one.
    from textmill.pipelines.local import run_local

    return run_local(config, console=console, log_file=log_file)


# `textmill run` exit statuses (README, "Validation gate").
EXIT_PUSHED = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


def _cmd_run(args) -> int:
    # Configuration errors are reported before TFX and TF load (seconds).
    config = _config_from_args(args)
    preflight(config)
    if args.verbose:
        summary = _run(config, sys.stderr, None)
    else:
        log_file = default_log_path(os.path.abspath(config.work_dir))
        with quiet_console(log_file) as console:
            summary = _run(config, console, log_file)
    from textmill.pipelines.local import SUMMARY_FILE
    from textmill.pipelines.summary import format_summary

    print(format_summary(summary))
    work_dir = summary["config"]["work_dir"]
    print(f"  summary: {os.path.join(work_dir, SUMMARY_FILE)}")
    if summary.get("log_file"):
        print(f"  log: {summary['log_file']}")
    if summary["outcome"] == "refused":
        print(
            "textmill run: the model was NOT BLESSED and not pushed "
            f"(exit status {EXIT_REFUSED})",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if summary["outcome"] == "failed":
        print(
            "textmill run FAILED: "
            f"{summary.get('error') or summary.get('not_pushed_reason')}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_PUSHED


def _cmd_corpus(args) -> int:
    from textmill.corpus.default_corpus import (
        write_default_corpus,
        write_label_corpus,
        write_summary_corpus,
    )

    if args.with_packages and (
        args.summaries or args.labels or args.translations
    ):
        print(
            "textmill corpus FAILED: --with-packages adds documents to the "
            "default corpus only; drop --summaries, --labels or "
            "--translations, or --with-packages.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.translations:
        from textmill.corpus.translations import (
            describe,
            write_translation_corpus,
        )

        try:
            path, report = write_translation_corpus(
                args.translations,
                args.out_dir,
                locale_dir=args.locale_dir,
                max_documents=args.max_documents,
            )
        except FileNotFoundError as e:
            print(f"textmill corpus FAILED: {e}", file=sys.stderr)
            return EXIT_FAILED
        print(describe(path, report))
        return 0
    write = functools.partial(
        write_default_corpus, with_packages=args.with_packages
    )
    if args.summaries:
        write = write_summary_corpus
    elif args.labels:
        write = write_label_corpus
    print(write(args.out_dir, max_documents=args.max_documents))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textmill",
        description="TFX pipelines from raw text to deployed language models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(subparsers)
    corpus = subparsers.add_parser(
        "corpus", help="write the embedded default corpus into OUT_DIR"
    )
    corpus.add_argument("out_dir")
    corpus.add_argument("--max-documents", type=int)
    kind = corpus.add_mutually_exclusive_group()
    kind.add_argument(
        "--summaries",
        action="store_true",
        help="write (text, summary) pairs for the summarization family",
    )
    kind.add_argument(
        "--labels",
        action="store_true",
        help="write (text, label) pairs for the longformer_classifier "
        "family",
    )
    kind.add_argument(
        "--translations",
        metavar="LANG",
        help="write (English, LANG) pairs from the gettext catalogs "
        "(*.mo) under --locale-dir, for the translation family",
    )
    corpus.add_argument(
        "--with-packages",
        action="store_true",
        help="with the default corpus: also the docstrings of the "
        "installed third-party packages, for next sentence prediction "
        "(bert_nsp)",
    )
    corpus.add_argument(
        "--locale-dir",
        default="/usr/share/locale",
        help="where --translations finds LANG/LC_MESSAGES/*.mo",
    )
    _COMMANDS.update(register_vertex(subparsers))
    _COMMANDS.update(register_serving(subparsers))
    _COMMANDS.update(register_convert(subparsers))
    for command in subparsers.choices.values():
        # `--verbose` also after the command; SUPPRESS keeps the value
        # given before it.
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log everything (INFO) to the console",
        )
    return parser


_COMMANDS = {"run": _cmd_run, "corpus": _cmd_corpus}
RESUME_HINT = (
    " Run the same command again to resume: finished steps are reused from"
    " the cache and training continues from its last checkpoint."
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command == "run"
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"textmill: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        print(
            f"textmill {args.command}: interrupted."
            + (RESUME_HINT if args.command == "run" else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
