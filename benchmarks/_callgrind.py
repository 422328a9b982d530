"""Counting the instructions a command executes, with valgrind's callgrind: repeatable where time is not."""

from __future__ import annotations

import shutil
import subprocess
from typing import List


def instructions(command: List[str]) -> int:
    """The instructions ``command`` executed in total (start-up included)."""
    result = subprocess.run(
        [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            *command,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    collected = [line for line in result.stderr.splitlines() if "Collected :" in line]
    return int(collected[-1].split(":")[-1])
