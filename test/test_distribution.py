"""The distribution as PyPI users get it: the installed files, the metadata, the README and
CHANGELOG on the project page, and the clash with the official SDK of the same name.

The suite must test what pip installed, not the checkout: run it with ``pytest`` (which
keeps the current directory off ``sys.path``) after ``pip install ".[test]"``, or against
an editable install (``pip install -e .``). ``python -m pytest`` after a plain install would
import the checkout instead, and the first test below says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

import kenar_api_client

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGE = ROOT / "kenar_api_client"
IMPORTED_PACKAGE = Path(kenar_api_client.__file__).resolve().parent
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"]).resolve()
#: The newest official generated build's version when this was written (its pyproject.toml).
OFFICIAL_SDK_VERSION = "0.297.0"


def installed_record() -> Optional[Distribution]:
    """pip's record of kenar-api-client in this environment's site-packages (not the checkout)."""
    found = [
        d
        for d in distributions(path=[str(SITE_PACKAGES)])
        if _normalized(d.metadata["Name"]) == "kenar-api-client"
    ]
    assert len(found) <= 1, f"{len(found)} records of kenar-api-client in {SITE_PACKAGES}"
    return found[0] if found else None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def editable_source(record: Distribution) -> Optional[Path]:
    """The directory an editable install points at, or None for a regular install."""
    text = record.read_text("direct_url.json")
    if not text:
        return None
    direct_url = json.loads(text)
    if not direct_url.get("dir_info", {}).get("editable"):
        return None
    return Path(direct_url["url"].replace("file://", "", 1)).resolve()


def metadata() -> Any:
    """The installed record's metadata (an ``email.message.Message``-like mapping)."""
    record = installed_record()
    if record is None:
        pytest.fail("kenar-api-client is not installed: pip install -e '.[test]'")
    return record.metadata


def version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


# -- what the suite tests ------------------------------------------------------------------


def test_the_suite_imports_the_installed_package() -> None:
    record = installed_record()
    assert record is not None, "kenar-api-client is not installed: pip install -e '.[test]'"
    source = editable_source(record)
    if source is not None:
        assert IMPORTED_PACKAGE.is_relative_to(source), (
            f"editable install of {source}, imported {IMPORTED_PACKAGE}"
        )
        return
    installed = Path(str(record.locate_file("kenar_api_client/__init__.py"))).resolve().parent
    assert installed == IMPORTED_PACKAGE, (
        f"the tests imported kenar_api_client from {IMPORTED_PACKAGE}, not the installed wheel at "
        f"{installed}: run 'pytest', not 'python -m pytest' (which puts the current directory "
        "first on sys.path), or install with 'pip install -e .'"
    )


def test_the_installed_wheel_holds_every_module_py_typed_and_the_console_script() -> None:
    record = installed_record()
    assert record is not None
    if editable_source(record) is not None:
        pytest.skip("an editable install has no wheel contents; CI runs this against the built wheel")
    if not SOURCE_PACKAGE.is_dir():
        pytest.skip(f"no source tree at {SOURCE_PACKAGE} to compare with")
    shipped = {str(path) for path in record.files or []}
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in SOURCE_PACKAGE.rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    }
    assert "kenar_api_client/py.typed" in expected
    assert sorted(expected - shipped) == []
    scripts = [(e.name, e.value) for e in record.entry_points if e.group == "console_scripts"]
    assert scripts == [("kenar-events", "kenar_api_client.cli:main")]


# -- metadata and the project page ---------------------------------------------------------


def project_urls() -> Dict[str, str]:
    entries = metadata().get_all("Project-URL") or []
    return dict(entry.split(", ", 1) for entry in entries)


def test_metadata_names_this_version_and_every_project_url() -> None:
    assert metadata()["Version"] == kenar_api_client.__version__
    urls = project_urls()
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    homepage = urls["Homepage"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", homepage)
    assert all(url.startswith(homepage) for url in urls.values()), urls
    assert metadata()["Author"] or metadata()["Author-email"]


def test_the_version_sorts_above_every_official_generated_build() -> None:
    version = version_key(kenar_api_client.__version__)
    assert version > version_key(OFFICIAL_SDK_VERSION)
    assert version[0] >= 1, "official builds are 0.x: staying at 1.0.0 or above keeps the two apart"


def declared_floors() -> Dict[str, str]:
    floors = {}
    for requirement in metadata().get_all("Requires-Dist") or []:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[\w.-]+", requirement)
        floor = re.search(r">=\s*([\w.]+)", requirement)
        assert name is not None
        assert floor is not None, f"{requirement!r} declares no floor"
        floors[name.group(0).lower()] = floor.group(1)
    return floors


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_states_the_declared_dependency_floors() -> None:
    floors = declared_floors()
    assert set(floors) == {"urllib3", "pydantic", "python-dateutil", "typing-extensions"}
    line = next(line for line in readme().split("\n\n") if line.startswith("Runtime dependencies:"))
    stated = dict(re.findall(r"`([\w.-]+)` >= (\d+(?:\.\d+)*)", line))
    assert stated == floors


def markdown_links(text: str) -> List[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.MULTILINE)


def test_readme_links_are_absolute_and_point_at_the_homepage() -> None:
    links = markdown_links(readme())
    assert len(links) >= 20
    relative = [link for link in links if not link.startswith(("https://", "http://", "#", "mailto:"))]
    assert relative == [], "relative links are dead on PyPI"
    homepage = project_urls()["Homepage"]
    repository_links = [link for link in links if "github.com" in link]
    assert [link for link in repository_links if not link.startswith(homepage + "/")] == []


def test_readme_links_to_files_that_exist() -> None:
    prefix = project_urls()["Homepage"] + "/blob/main/"
    targets = {
        link[len(prefix) :].split("#")[0] for link in markdown_links(readme()) if link.startswith(prefix)
    }
    assert targets
    assert sorted(t for t in targets if not (ROOT / t).is_file()) == []


def test_changelog_has_the_policy_and_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## Versioning policy" in changelog
    assert re.search(rf"^## \[{re.escape(kenar_api_client.__version__)}\]", changelog, re.MULTILINE)
    homepage = project_urls()["Homepage"]
    assert [
        link for link in markdown_links(changelog) if "github.com" in link and not link.startswith(homepage)
    ] == []


# -- the clash with the official SDK -------------------------------------------------------


def fake_site(tmp_path: Path, record_version: str, init_text: Optional[str] = None) -> Path:
    """A site directory holding this SDK's files and pip's record of ``record_version``."""
    site = tmp_path / "site"
    shutil.copytree(IMPORTED_PACKAGE, site / "kenar_api_client", ignore=shutil.ignore_patterns("__pycache__"))
    if init_text is not None:
        (site / "kenar_api_client" / "__init__.py").write_text(init_text, encoding="utf-8")
    record = site / f"kenar_api_client-{record_version}.dist-info"
    record.mkdir()
    (record / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: kenar-api-client\nVersion: {record_version}\n", encoding="utf-8"
    )
    return site


def run_python(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_importing_warns_when_pip_also_records_the_official_build(tmp_path: Path) -> None:
    site = fake_site(tmp_path, OFFICIAL_SDK_VERSION)
    site_version = f"kenar_api_client-{kenar_api_client.__version__}.dist-info"
    shutil.copytree(site / f"kenar_api_client-{OFFICIAL_SDK_VERSION}.dist-info", site / site_version)

    result = run_python(site, "-c", "import kenar_api_client")

    assert result.returncode == 0
    assert "RuntimeWarning" in result.stderr
    assert f"also records kenar-api-client {OFFICIAL_SDK_VERSION}" in result.stderr
    assert "pip uninstall kenar-api-client" in result.stderr


def test_a_clean_install_imports_silently_and_reports_its_version(tmp_path: Path) -> None:
    site = fake_site(tmp_path, kenar_api_client.__version__)

    imported = run_python(site, "-c", "import kenar_api_client")
    version = run_python(site, "-m", "kenar_api_client.cli", "--version")

    assert (imported.returncode, imported.stderr) == (0, "")
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines() == [
        f"kenar-events {kenar_api_client.__version__}",
        f"kenar-api-client {kenar_api_client.__version__} in {site / 'kenar_api_client'}",
    ]


def test_version_fails_and_explains_when_the_official_init_replaced_ours(tmp_path: Path) -> None:
    site = fake_site(tmp_path, OFFICIAL_SDK_VERSION, init_text=f'__version__ = "{OFFICIAL_SDK_VERSION}"\n')

    result = run_python(site, "-m", "kenar_api_client.cli", "--version")

    assert result.returncode == 1
    assert f"also records kenar-api-client {OFFICIAL_SDK_VERSION}" in result.stderr
    assert f"it says version '{OFFICIAL_SDK_VERSION}'" in result.stderr
    assert 'pip install "kenar-api-client>=1"' in result.stderr
