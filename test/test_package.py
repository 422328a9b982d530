"""The package as users install and import it: public names, version, typing marker, light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kenar_api_client

PACKAGE_DIR = Path(kenar_api_client.__file__).parent


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(output.split())


def test_every_public_name_resolves() -> None:
    for name in kenar_api_client.__all__:
        assert getattr(kenar_api_client, name) is not None, name
    assert set(kenar_api_client.__all__) <= set(dir(kenar_api_client))


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        kenar_api_client.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_version_is_defined_once_and_exposed() -> None:
    from kenar_api_client._version import __version__

    assert kenar_api_client.__version__ == __version__
    assert __version__.count(".") == 2


def test_py_typed_marker_is_shipped() -> None:
    assert (PACKAGE_DIR / "py.typed").exists()


def test_importing_the_package_loads_neither_models_nor_extras() -> None:
    loaded = imported_after("import kenar_api_client")
    assert "pydantic.main" not in loaded
    assert not {m for m in loaded if m.startswith(("kenar_api_client.webhooks", "kenar_api_client.sandbox"))}
    assert "kenar_api_client.cli" not in loaded


def test_using_the_client_does_not_load_webhooks_sandbox_or_cli() -> None:
    loaded = imported_after(
        "import kenar_api_client\n"
        "c = kenar_api_client.ApiClient(kenar_api_client.Configuration())\n"
        "kenar_api_client.EventsApi(c)\n"
        "kenar_api_client.EventsRegisterEventSubscriptionRequest(event_type='POST_UPDATE')\n"
    )
    assert not {
        m
        for m in loaded
        if m.startswith(("kenar_api_client.webhooks", "kenar_api_client.sandbox", "kenar_api_client.cli"))
    }
