"""What a user's type checker says about code using the package, under mypy --strict and pyright.

Checked, each as a user's own file outside this repository, against the kenar_api_client
the tests import (the installed wheel, in CI):

* every ```python block of README.md and docs/*.md that test_docs_examples.py runs, but
  those using a library that ships no complete types (Django: its stubs are a separate mypy
  plugin; RQ: its queue methods take arguments of unknown type), where a strict checker
  would only report the library;
* ``typecheck/user_code.py``: ``assert_type`` pins what the checkers infer for the public API;
* ``typecheck/rejected_code.py``: each line marked ``# rejected`` must be an error, and
  only those lines.

Both checkers run in strict mode. Without mypy or pyright installed (``pip install
-e ".[lint]"``) these tests skip, unless ``KENAR_REQUIRE_TYPECHECKERS`` is set (CI sets it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set

import pytest
from test_docs_examples import BLOCKS, runs_here

import kenar_api_client

HERE = Path(__file__).resolve().parent
USER_CODE = HERE / "typecheck" / "user_code.py"
REJECTED_CODE = HERE / "typecheck" / "rejected_code.py"
REQUIRE_ENV = "KENAR_REQUIRE_TYPECHECKERS"
CHECKERS = ("mypy", "pyright")
CHECK_TIMEOUT = 300
_UNTYPED_FRAMEWORK = re.compile(r"^\s*(from|import)\s+(django|rq)\b", re.MULTILINE)
_REJECTED_MARK = re.compile(r"\S.*\s# rejected(:|$)")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _require(checker: str) -> None:
    if importlib.util.find_spec(checker) is None:
        message = f"{checker} is not installed (pip install -e '.[lint]')"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)


def _package_search_path() -> List[str]:
    """Where the checkers must look for kenar_api_client when it is not in site-packages.

    An editable install or a source checkout is found by an import hook the checkers do not
    follow; the installed wheel needs nothing: it is checked exactly as users get it.
    """
    parent = Path(kenar_api_client.__file__).resolve().parent.parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    return [] if parent == site else [str(parent)]


def _write_sources(workdir: Path) -> Dict[str, str]:
    """User files to check, in ``workdir``; maps each file name to what it shows in messages."""
    names: Dict[str, str] = {}
    for block in BLOCKS:
        if runs_here(block) and block.marker_problem() is None and not _UNTYPED_FRAMEWORK.search(block.code):
            name = re.sub(r"\W", "_", block.id) + ".py"
            (workdir / name).write_text(block.code, encoding="utf-8")
            names[name] = block.id
    for source in (USER_CODE, REJECTED_CODE):
        shutil.copy(source, workdir / source.name)
        names[source.name] = f"typecheck/{source.name}"
    return names


def _run(command: List[str], workdir: Path, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )


def run_mypy(workdir: Path, files: List[str]) -> List[Diagnostic]:
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    extra = _package_search_path()
    if extra:
        env["MYPYPATH"] = os.pathsep.join(extra)
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes"]
    command += ["--cache-dir", str(workdir / ".mypy_cache"), "--no-error-summary", *files]
    result = _run(command, workdir, env)
    pattern = re.compile(r"^(?P<file>[^:\s]+\.py):(?P<line>\d+): error: (?P<message>.*)$")
    found = [m for m in map(pattern.match, result.stdout.splitlines()) if m]
    if result.returncode not in (0, 1) or (result.returncode == 1 and not found):
        raise AssertionError(f"mypy failed to run ({result.returncode}):\n{result.stdout}{result.stderr}")
    return [Diagnostic(m["file"], int(m["line"]), m["message"]) for m in found]


def run_pyright(workdir: Path, files: List[str]) -> List[Diagnostic]:
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "extraPaths": _package_search_path(),
        "include": files,
    }
    (workdir / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    command = [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable]
    result = _run(command, workdir, dict(os.environ))
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(
            f"pyright failed to run ({result.returncode}):\n{result.stdout}{result.stderr}"
        ) from None
    return [
        Diagnostic(Path(d["file"]).name, d["range"]["start"]["line"] + 1, d["message"])
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]


@dataclass
class CheckerRun:
    names: Dict[str, str]  # file -> what to call it in messages
    diagnostics: List[Diagnostic]

    def errors_in(self, file: str) -> List[str]:
        return [f"{self.names[d.file]}:{d.line}: {d.message}" for d in self.diagnostics if d.file == file]


@pytest.fixture(scope="module", params=CHECKERS)
def checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CheckerRun:
    """One run of one checker over all the user files, shared by the tests below."""
    checker: str = request.param
    _require(checker)
    workdir = tmp_path_factory.mktemp(f"typecheck-{checker}")
    names = _write_sources(workdir)
    run = run_mypy if checker == "mypy" else run_pyright
    return CheckerRun(names, run(workdir, sorted(names)))


def test_every_doc_example_type_checks(checked: CheckerRun) -> None:
    docs = [name for name in checked.names if not name.endswith(("user_code.py", "rejected_code.py"))]
    assert len(docs) >= 10
    errors = [error for name in docs for error in checked.errors_in(name)]
    assert errors == []


def test_user_code_infers_the_documented_types(checked: CheckerRun) -> None:
    assert checked.errors_in(USER_CODE.name) == []


def _rejected_lines() -> Set[int]:
    lines = REJECTED_CODE.read_text(encoding="utf-8").splitlines()
    return {number for number, line in enumerate(lines, 1) if _REJECTED_MARK.search(line)}


def test_mistakes_are_rejected_and_nothing_else(checked: CheckerRun) -> None:
    expected = _rejected_lines()
    assert len(expected) >= 10
    flagged = {d.line for d in checked.diagnostics if d.file == REJECTED_CODE.name}
    missed = sorted(expected - flagged)
    assert missed == [], f"accepted by the checker: lines {missed} of {REJECTED_CODE.name}"
    unexpected = [e for e in checked.errors_in(REJECTED_CODE.name) if int(e.split(":")[1]) not in expected]
    assert unexpected == []
