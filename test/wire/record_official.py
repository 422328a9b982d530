"""Record what the official kenar_api_client sends and returns for every case of wire_cases.py.

Run it with a Python where the official client (divar-ir/kenar-sdk-python) is installed, from
the repository root:

    /path/to/official-venv/bin/python test/wire/record_official.py

It writes test/wire/official_requests.json, which test_official_wire.py compares us against.
Only facts are kept: the requests on the wire (again with the model arguments passed as
instances), and the results: JSON, to_dict() with its Python types, repr, to_json, to_str.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[2]
# After site-packages, so that the installed official client wins over this repository's package.
sys.path.extend([str(ROOT), str(ROOT / "test")])

from servers import RecordingServer, Reply  # noqa: E402
from wire_cases import ACCESS_TOKEN, API_KEY, load_cases, outcome, typed  # noqa: E402

import kenar_api_client  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "official_requests.json"
RECORDED_HEADERS = ("Accept", "Content-Type", "X-API-Key", "Authorization")


def jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def request_record(server: RecordingServer) -> Dict[str, Any]:
    request = server.last
    return {
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": {name: request.headers.get(name) for name in RECORDED_HEADERS},
        "body": request.body.decode("utf-8"),
    }


def result_record(result: Any) -> Dict[str, Any]:
    """What code reads of a result: its type, to_dict() with its Python types, repr, to_json, to_str."""
    record: Dict[str, Any] = {"result_type": type(result).__name__, "result": jsonable(result)}
    if hasattr(result, "to_dict"):
        record.update(
            {
                "to_dict": typed(result.to_dict()),
                "repr": repr(result),
                "to_json": outcome(result.to_json),
                "to_str": result.to_str(),
            }
        )
    return record


def with_model_instances(kwargs: Dict[str, Any], model_params: Dict[str, str]) -> Dict[str, Any]:
    """``kwargs`` with each model argument built from its dict by the model's own from_dict."""
    models = kenar_api_client.models
    return {
        name: getattr(models, model_params[name]).from_dict(value) if name in model_params else value
        for name, value in kwargs.items()
    }


def main() -> int:
    if Path(kenar_api_client.__file__).resolve().is_relative_to(ROOT):
        print("this imported the repository's package, not the official client", file=sys.stderr)
        return 1
    import kenar_api_client.api.limited_api as limited

    server = RecordingServer().start()
    configuration = kenar_api_client.Configuration(
        host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )
    client = kenar_api_client.ApiClient(configuration)
    records = []
    for case in load_cases():
        api_class = (
            limited.LimitedApi if case["api"] == "LimitedApi" else getattr(kenar_api_client, case["api"])
        )
        server.queue_reply(Reply(body=case["answer"]))
        method = getattr(api_class(client), case["method"])
        result = method(**case["kwargs"])
        parameters = [name for name in inspect.signature(method).parameters if not name.startswith("_")]
        record: Dict[str, Any] = {
            **case,
            "request": request_record(server),
            "parameters": parameters,
            **result_record(result),
        }
        if case["model_params"]:
            server.queue_reply(Reply(body=case["answer"]))
            method(**with_model_instances(case["kwargs"], case["model_params"]))
            record["request_with_models"] = request_record(server)
        records.append(record)
    server.stop()
    OUTPUT.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {len(records)} operations into {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
