"""Telling this SDK's files from the official generated SDK, which installs under the same names.

Both are the distribution ``kenar-api-client`` with the import package ``kenar_api_client``.
pip keeps one at a time, but some installs mix them in one directory (``pip install
--ignore-installed``, ``--target``, copied trees): then pip's records (``*.dist-info``) of
another version sit beside this package, and imports load files of either.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Tuple

from kenar_api_client._version import __version__

DISTRIBUTION = "kenar-api-client"
#: The directory of this SDK's files (whatever else was installed into it).
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_RECORD_PREFIX = "kenar_api_client-"
_RECORD_SUFFIXES = (".dist-info", ".egg-info")
_FIX = (
    "Keep one install: 'pip uninstall kenar-api-client' (repeat until pip says it is not "
    """installed), then 'pip install "kenar-api-client>=1"'."""
)


def foreign_installs(package_dir: str) -> List[str]:
    """The versions of other ``kenar-api-client`` installs recorded beside ``package_dir``."""
    try:
        names = os.listdir(os.path.dirname(package_dir))
    except OSError:
        return []
    versions = (_recorded_version(name) for name in names if name.startswith(_RECORD_PREFIX))
    return sorted(version for version in versions if version is not None and version != __version__)


def _recorded_version(name: str) -> Optional[str]:
    """``0.1.0`` for ``kenar_api_client-0.1.0.dist-info`` (or ``-0.1.0-py3.9.egg-info``)."""
    for suffix in _RECORD_SUFFIXES:
        if name.endswith(suffix):
            return name[len(_RECORD_PREFIX) : -len(suffix)].split("-")[0]
    return None


def clash_message(package_dir: str, others: List[str]) -> str:
    """Why a mixed install is a problem, and the commands that fix it."""
    return (
        f"{package_dir} holds kenar-api-client {__version__} (this SDK), but pip also records "
        f"kenar-api-client {', '.join(others)} there: the official generated Kenar SDK installs "
        f"under the same name, and the two are mixed, so imports may load files of either. {_FIX}"
    )


def warn_if_mixed(package_dir: str) -> None:
    """Warn (``RuntimeWarning``) when another install of the distribution is recorded here."""
    others = foreign_installs(package_dir)
    if others:
        import warnings

        warnings.warn(clash_message(package_dir, others), RuntimeWarning, stacklevel=2)


def describe_installation() -> Tuple[str, List[str]]:
    """A line saying which ``kenar-api-client`` this is and where, and what is wrong with it."""
    import importlib.metadata

    problems: List[str] = []
    others = foreign_installs(PACKAGE_DIR)
    if others:
        problems.append(clash_message(PACKAGE_DIR, others))
    homepage = None
    try:
        distribution: Optional[importlib.metadata.Distribution] = importlib.metadata.distribution(
            DISTRIBUTION
        )
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        urls = dict(entry.split(", ", 1) for entry in distribution.metadata.get_all("Project-URL") or [])
        homepage = urls.get("Homepage")
        if distribution.version != __version__ and not others:
            problems.append(
                f"pip reports kenar-api-client {distribution.version}, but the files in {PACKAGE_DIR} "
                f"are this SDK's {__version__}: that record is another install's (the official "
                f"generated SDK uses the same name) or a stale one. {_FIX}"
            )
    imported = getattr(sys.modules.get("kenar_api_client"), "__version__", None)
    if imported != __version__:
        problems.append(
            f"{PACKAGE_DIR}/__init__.py is not this SDK's (it says version {imported!r}): the "
            f"official generated SDK was installed over this one. {_FIX}"
        )
    line = f"{DISTRIBUTION} {__version__} in {PACKAGE_DIR}" + (f" ({homepage})" if homepage else "")
    return line, problems
