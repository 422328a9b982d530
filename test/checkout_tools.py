"""The code generator, imported from the checkout (or the sdist) for the tests that use it.

``generator/`` is a development tool beside the package, not part of the wheel. The tests
run against the installed wheel with the checkout off ``sys.path`` (see
test_distribution.py), so the generator is loaded from its directory by path: that exposes
``generator`` alone, never the checkout's copy of ``kenar_api_client``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GENERATOR_DIR = Path(__file__).resolve().parents[1] / "generator"


def load_generator() -> None:
    """Make ``import generator`` work, if the checkout has it and nothing imported it yet."""
    init = GENERATOR_DIR / "__init__.py"
    if "generator" in sys.modules or not init.is_file():
        return
    spec = importlib.util.spec_from_file_location(
        "generator", init, submodule_search_locations=[str(GENERATOR_DIR)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generator"] = module
    spec.loader.exec_module(module)
