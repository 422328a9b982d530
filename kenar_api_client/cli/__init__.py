"""``kenar-events``: Kenar events, OAuth and a local sandbox from the command line.

A thin argparse layer (:mod:`.parser`) over ``EventsApi``, ``kenar_api_client.oauth``,
``kenar_api_client.webhooks`` and ``kenar_api_client.sandbox``. Each command lives in a
module of this package and is imported only when it runs, so ``kenar-events --help`` and
importing this package stay light.

Exit status: 0 success; 1 an API, delivery or connection error (one ``error:`` line on
stderr); 2 a usage error; 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from kenar_api_client.cli.parser import PROG, build_parser

__all__ = ["build_parser", "main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``kenar-events`` with ``argv`` (default: the command line); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)

    from kenar_api_client.cli.output import (
        EXIT_FAILED,
        EXIT_INTERRUPTED,
        EXIT_USAGE,
        CommandError,
        Output,
        UsageError,
    )

    out = Output(as_json=bool(args.json))
    module_name, function_name = str(args.run).split(":")
    run = getattr(importlib.import_module(f"kenar_api_client.cli.{module_name}"), function_name)
    try:
        status: int = run(args, out)
    except UsageError as exc:
        out.error(f"{exc} (see: {PROG} {getattr(args, 'help_for', args.command)} --help)")
        return EXIT_USAGE
    except CommandError as exc:
        out.error(str(exc))
        out.document({"ok": False, "error": {"message": str(exc)}})
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        if not _printing_failed(exc):  # a connection's, not ours to silence
            raise
        _discard_stdout()  # the reader went away: `kenar-events demo | head -1`
        return EXIT_FAILED
    return status


def _printing_failed(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while the command printed (not by a socket, say)."""
    import traceback

    from kenar_api_client.cli import output

    frames = traceback.walk_tb(exc.__traceback__)
    return any(frame.f_code.co_filename == output.__file__ for frame, _ in frames)


def _discard_stdout() -> None:
    """Send what is left on stdout nowhere, so exiting does not report the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (captured in tests)
        pass
