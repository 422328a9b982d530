"""``python -m generator``: rewrite every generated file from generator/spec/kenar-openapi.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from generator.output import ROOT, generate, write


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator", description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root to write into")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    files = generate(args.root)
    changed = write(args.root, files)
    elapsed = time.perf_counter() - started
    print(f"generator: {len(files)} files, {len(changed)} changed, {elapsed:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
