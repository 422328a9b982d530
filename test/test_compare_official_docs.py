"""tools/compare_official_docs.py: which runs it makes, what it calls a difference, and a whole run.

The official client is not installed here: the end-to-end run compares this SDK with itself
on a small checkout written by the test, which must come out identical, and the parts that
tell differences apart are checked on outcomes built by hand.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Dict

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
pytestmark = pytest.mark.skipif(not TOOLS.is_dir(), reason="tools/ is not in this tree")


def load_tool(name: str) -> ModuleType:
    """A module of tools/, by path: the checkout's package stays off sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the tools import each other by these names
    spec.loader.exec_module(module)
    return module


README = """# kenar-api-client

```python
import kenar_api_client

configuration = kenar_api_client.Configuration(
    host = "https://open-api.divar.ir"
)
configuration.api_key['APIKey'] = os.environ["API_KEY"]
configuration.access_token = os.environ["ACCESS_TOKEN"]
with kenar_api_client.ApiClient(configuration) as api_client:
    api = kenar_api_client.EventsApi(api_client)
    print(api.events_send_event(message="m", target_type="USER", target_resource_id="u"))
```
"""
ENUM_PAGE = """# SendEventRequestTargetType


## Enum

* `USER` (value: `'USER'`)

* `POST` (value: `'POST'`)

[[Back to Model list]](../README.md#documentation-for-models)
"""
MODEL_PAGE = """# PaymentTransaction


## Properties

Name | Type | Description | Notes
------------ | ------------- | ------------- | -------------
**id** | **str** | an id | [optional]
**created_at** | **datetime** | when | [optional]
**state** | [**PaymentTransactionState**](PaymentTransactionState.md) |  | [optional]

## Example

```python
from kenar_api_client.models.payment_transaction import PaymentTransaction

json = "{}"
payment_transaction_instance = PaymentTransaction.from_json(json)
print(PaymentTransaction.to_json())
```
"""
STATE_PAGE = """# PaymentTransactionState


## Enum

* `TRANSACTION_STATE_PENDING` (value: `'TRANSACTION_STATE_PENDING'`)
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    pages = {
        "SendEventRequestTargetType": ENUM_PAGE,
        "PaymentTransaction": MODEL_PAGE,
        "PaymentTransactionState": STATE_PAGE,
    }
    for name, text in pages.items():
        (tmp_path / "docs" / f"{name}.md").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_runs_of_a_checkout(checkout: Path) -> None:
    official_docs = load_tool("official_docs")
    runs = {run.id: run for run in official_docs.runs(checkout, "http://127.0.0.1:9")}
    assert sorted(runs) == [
        "README.md#1",
        "docs/PaymentTransaction.md (round trip)",
        "docs/PaymentTransaction.md#1",
        "docs/PaymentTransactionState.md (enum)",
        "docs/SendEventRequestTargetType.md (enum)",
    ]
    readme = runs["README.md#1"].source
    assert 'host = "http://127.0.0.1:9"' in readme
    assert readme.replace("http://127.0.0.1:9", "https://open-api.divar.ir") in README  # nothing else changed
    trip = runs["docs/PaymentTransaction.md (round trip)"].source
    assert "from kenar_api_client.models.payment_transaction import PaymentTransaction" in trip
    document = json.loads(trip.split("json.loads(", 1)[1].split(")\n", 1)[0].strip("'"))
    assert document == {
        "id": "example ی",
        "created_at": "2025-01-01T12:00:00Z",
        "state": "TRANSACTION_STATE_PENDING",
    }
    assert "SendEventRequestTargetType('POST')" in runs["docs/SendEventRequestTargetType.md (enum)"].source


def test_the_server_answers_each_operation_from_the_spec_and_records_requests() -> None:
    spec_server = load_tool("spec_server")
    from generator import spec

    server = spec_server.SpecServer(spec.load()).start()
    try:
        server.begin()
        request = urllib.request.Request(
            f"{server.url}/experimental/open-platform/transactions/t-1", headers={"X-API-Key": "k"}
        )
        with urllib.request.urlopen(request) as answer:
            body = json.loads(answer.read())
        assert body["transaction"]["state"] == "TRANSACTION_STATE_PENDING"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.url}/no/such/operation")
        assert missing.value.code == 404
        recorded = server.take()
    finally:
        server.stop()
    assert [(r["method"], r["path"]) for r in recorded] == [
        ("GET", "/experimental/open-platform/transactions/t-1"),
        ("GET", "/no/such/operation"),
    ]
    assert recorded[0]["headers"]["x-api-key"] == "k"
    assert "host" not in recorded[0]["headers"]


def outcome(**changes: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {"stdout": "", "stderr": "", "warnings": [], "exception": None, "requests": []}
    return {**base, **changes}


def a_request(agent: str) -> Dict[str, Any]:
    return {"method": "GET", "path": "/p", "headers": {"user-agent": agent}, "body": None}


def test_what_counts_as_a_difference_and_which_are_listed() -> None:
    compare = load_tool("official_differences")
    same = outcome(stdout="x at 0x7f3a2b1c9d80\n")
    assert compare.differences(same, outcome(stdout="x at 0x7f00deadbeef\n")) == []

    found = compare.differences(
        outcome(requests=[a_request("OpenAPI-Generator/0.1.0/python")]),
        outcome(requests=[a_request("kenar-api-client/1.0.0/python")]),
    )
    assert [d.aspect for d in found] == ["requests"]
    outcomes = {"official": outcome(), "ours": outcome()}
    assert compare.listed_as(found[0], outcomes) == "the User-Agent names this SDK"

    other_path = {**a_request("x"), "path": "/q"}
    found = compare.differences(outcome(requests=[a_request("x")]), outcome(requests=[other_path]))
    assert compare.listed_as(found[0], outcomes) is None

    by_position = compare.differences(
        outcome(stdout="error for A.m\n1\n  bad\n"), outcome(stdout="error for A.m\nbody\n  bad\n")
    )
    assert compare.listed_as(by_position[0], outcomes) == "a refused argument is named, not numbered"
    worded = compare.differences(
        outcome(stdout="error for A.m\n  bad\n"), outcome(stdout="error for A.m\n  worse\n")
    )
    assert compare.listed_as(worded[0], outcomes) is None

    theirs = outcome(exception={"type": "builtins.TypeError", "message": "m", "line": 3})
    assert [d.aspect for d in compare.differences(theirs, outcome())] == ["exception"]
    assert compare.listed_as(compare.differences(theirs, outcome())[0], outcomes) is None


def test_a_whole_run_of_this_sdk_against_itself_is_identical(checkout: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(TOOLS / "compare_official_docs.py"),
            "--official",
            str(checkout),
            "--official-python",
            sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 of 5 runs identical but for the listed differences" in result.stdout
    assert "listed:" not in result.stdout  # the same client differs in nothing
