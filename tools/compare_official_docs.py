"""Run the official client's documentation under both clients and print every difference.

    python tools/compare_official_docs.py --official PATH [--official-python PY] [--ours-python PY]

PATH is a checkout of divar-ir/kenar-sdk-python (it is not vendored here). Every Python
block of its README.md and docs/*.md runs unchanged but for the host, plus a script per
model page (a round trip of a document with every field filled) and per enum page (see
official_docs.py), once under the official client and once under this SDK, each in its own
Python (``--official-python``: one with the official package installed, by default a new
virtualenv with PATH installed; ``--ours-python``: by default this one). The examples use
``os.environ`` without importing ``os``; the runner provides it, as the user's script would.
API_KEY and ACCESS_TOKEN are set. Both clients talk to one loopback server that answers
every operation of the spec (spec_server.py).

A run is identical when both clients printed the same (stdout and stderr, memory addresses
aside), raised the same warnings, ended with the same exception (type, message, block line)
or none, and sent the same requests (method, path and query, headers, body as a JSON value:
the official client writes ``", "`` and ``\\uXXXX``, this SDK compact UTF-8). The
differences this SDK makes on purpose are in ``LISTED`` below, each as docs/FromOfficialClient.md
lists it; a run whose only differences are listed ones counts as identical but for them.
Every other difference is printed, and the exit status is 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import IO, Any, Dict, Optional, Sequence, Tuple

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path[:0] = [str(ROOT)]  # the generator: spec, names and samples

from official_differences import Difference, differences, listed_as  # noqa: E402
from official_docs import Run, runs  # noqa: E402
from spec_server import SpecServer  # noqa: E402

from generator import spec as spec_module  # noqa: E402

RUNNER = TOOLS / "docs_runner.py"
#: What the examples read from the environment (``os.environ["API_KEY"]``).
ENVIRONMENT = {"API_KEY": "docs-api-key-3f1c", "ACCESS_TOKEN": "docs-access-token-8e2b"}


class Client:
    """One client's Python running docs_runner.py, fed one block at a time."""

    def __init__(self, name: str, python: str, workdir: Path) -> None:
        self.name = name
        environment = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **ENVIRONMENT}
        environment.update({"PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"})
        self._process = subprocess.Popen(  # noqa: S603 - our own runner, under a Python we were given
            [python, "-I", str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=workdir,
            env=environment,
            text=True,
            encoding="utf-8",
        )
        self.package = self._read()["ready"]

    def _read(self) -> Dict[str, Any]:
        stdout: Optional[IO[str]] = self._process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            raise RuntimeError(f"the {self.name} client's runner stopped (exit {self._process.wait()})")
        result: Dict[str, Any] = json.loads(line)
        return result

    def run(self, run: Run) -> Dict[str, Any]:
        stdin = self._process.stdin
        if stdin is None:
            raise RuntimeError(f"the {self.name} client's runner has no input")
        stdin.write(json.dumps({"id": run.id, "filename": run.filename, "source": run.source}) + "\n")
        stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait()


def official_python(checkout: Path, where: Path) -> str:
    """A Python with the official client installed from ``checkout``, in a new virtualenv."""
    venv.EnvBuilder(with_pip=True).create(where)
    python = str(where / "bin" / "python")
    subprocess.run(  # noqa: S603 - pip, installing the checkout we were given
        [python, "-m", "pip", "install", "--quiet", str(checkout)], check=True
    )
    return python


def compare(
    checkout: Path, pythons: Dict[str, str], only: Optional[str], out: IO[str]
) -> Tuple[int, int, Dict[str, int], Dict[str, int]]:
    """Run everything and print each unlisted difference.

    Returns (runs, runs identical but for listed differences, runs per listed difference,
    runs per kind).
    """
    server = SpecServer(spec_module.load(ROOT / "generator" / "spec" / "kenar-openapi.json")).start()
    selected = [run for run in runs(checkout, server.url) if only is None or re.search(only, run.id)]
    kinds: Dict[str, int] = {}
    for run in selected:
        kinds[run.kind] = kinds.get(run.kind, 0) + 1
    with tempfile.TemporaryDirectory() as workdir:
        clients = {name: Client(name, python, Path(workdir)) for name, python in pythons.items()}
        for client in clients.values():
            print(f"{client.name}: {client.package}", file=out)
        same = 0
        listed_counts: Dict[str, int] = {}
        try:
            for run in selected:
                outcomes = {}
                for name, client in clients.items():
                    server.begin()
                    outcomes[name] = client.run(run)
                    outcomes[name]["requests"] = server.take()
                found = differences(outcomes["official"], outcomes["ours"])
                listed = [(difference, listed_as(difference, outcomes)) for difference in found]
                unlisted = [difference for difference, reason in listed if reason is None]
                for reason in {reason for _, reason in listed if reason is not None}:
                    listed_counts[reason] = listed_counts.get(reason, 0) + 1
                if unlisted:
                    print(describe(run, unlisted), file=out)
                else:
                    same += 1
        finally:
            for client in clients.values():
                client.close()
            server.stop()
    return len(selected), same, listed_counts, kinds


def describe(run: Run, found: Sequence[Difference]) -> str:
    lines = [f"== {run.id}"]
    for difference in found:
        lines.append(f"-- {difference.aspect}")
        for side, value in (("official", difference.official), ("ours", difference.ours)):
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
            lines.append(f"   {side}:")
            lines.extend(f"     {line}" for line in text.splitlines() or [""])
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of divar-ir/kenar-sdk-python")
    parser.add_argument("--official-python", help="a Python with the official client installed")
    parser.add_argument("--ours-python", default=sys.executable, help="a Python with this SDK installed")
    parser.add_argument("--only", help="run only the runs whose id matches this regular expression")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        pythons = {
            "official": args.official_python or official_python(args.official, Path(scratch) / "venv"),
            "ours": args.ours_python,
        }
        total, same, listed_counts, kinds = compare(args.official, pythons, args.only, sys.stdout)
    print(f"{same} of {total} runs identical but for the listed differences")
    for kind, count in sorted(kinds.items()):
        print(f"  runs: {kind}: {count}")
    for name, count in sorted(listed_counts.items()):
        print(f"  listed: {name}: {count} runs")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
