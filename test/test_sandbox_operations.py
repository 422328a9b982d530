"""Every operation of the SDK against the sandbox: validated like Kenar would, answered from the spec."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
from wire_cases import load_cases

import kenar_api_client
from kenar_api_client import ApiClient, Configuration, ForbiddenException, UnauthorizedException
from kenar_api_client._operation_security import OPERATION_SECURITY
from kenar_api_client.models import KenarModel
from kenar_api_client.sandbox import DEMO_API_KEY, AccessToken, Sandbox
from kenar_api_client.sandbox._spec_operations import OPERATIONS

ALL_SCOPES_TOKEN = "token-with-every-scope"
NO_SCOPES_TOKEN = "token-with-no-scope"
SCOPES = {name: scopes for name, (_, scopes) in OPERATION_SECURITY.items()}
EVENTS_OPERATIONS = {"events_register_event_subscription", "events_send_event"}


def every_scope() -> List[str]:
    """Each scope the spec names; one bound to a resource, for every id the cases send."""
    ids = {scoped(v) for case in load_cases() for v in case["kwargs"].values() if isinstance(v, str)}
    granted = set()
    for scope in {scope for scopes in SCOPES.values() for scope in scopes}:
        base, _, resource = scope.partition(".")
        granted.update({f"{base}.{id_}" for id_ in ids} if resource else {base})
    return sorted(granted)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    tokens = {
        ALL_SCOPES_TOKEN: AccessToken("demo-user-7f3a", every_scope(), ["wZ3kT9pQ"]),
        NO_SCOPES_TOKEN: AccessToken("demo-user-7f3a", [], []),
    }
    with Sandbox(access_tokens=tokens) as running:
        # The chat operations answer only conversations someone started.
        running.add_conversation("wZ3kT9pQ", conversation_id=POST_CONVERSATION)
        running.add_conversation(None, conversation_id=BOT_CONVERSATION)
        yield running


POST_CONVERSATION = "c-7f3a"
BOT_CONVERSATION = "bot-7f3a"


def as_chat_allows(case: Dict[str, Any]) -> Dict[str, Any]:
    """The wire case, made to follow Kenar's chat rules: a text or a media token (not both),
    a chatbot writing into a chatbot conversation or to the authenticated user."""
    kwargs = dict(case["kwargs"])
    for name, value in kwargs.items():
        if name.endswith("_body") and isinstance(value, dict) and "media_token" in value:
            kwargs[name] = {k: v for k, v in value.items() if k != "media_token"}
    if case["method"].startswith("chat_api_chat_bot_send_message"):
        if "conversation_id" in kwargs:
            kwargs["conversation_id"] = BOT_CONVERSATION
        else:
            kwargs["user_id"] = "demo-user-7f3a"
    return {**case, "kwargs": kwargs}


def client_for(sandbox: Sandbox, token: str) -> ApiClient:
    return ApiClient(Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=token))


def call(api_client: ApiClient, case: Dict[str, Any]) -> Any:
    if case["api"] == "LimitedApi":
        from kenar_api_client.api.limited_api import LimitedApi

        with pytest.warns(DeprecationWarning, match="use PaymentApi"):
            api: Any = LimitedApi(api_client)
    else:
        api = getattr(kenar_api_client, case["api"])(api_client)
    return getattr(api, case["method"])(**case["kwargs"])


GENERIC_CASES = [c for c in load_cases() if c["method"] not in EVENTS_OPERATIONS]


def test_the_sandbox_knows_every_operation_of_the_spec() -> None:
    assert len(OPERATIONS) == 68


@pytest.mark.parametrize("case", GENERIC_CASES, ids=[f"{c['api']}.{c['method']}" for c in GENERIC_CASES])
def test_every_operation_succeeds_with_a_schema_valid_answer(sandbox: Sandbox, case: Dict[str, Any]) -> None:
    case = as_chat_allows({**case, "kwargs": {k: scoped(v) for k, v in case["kwargs"].items()}})
    with client_for(sandbox, ALL_SCOPES_TOKEN) as api_client:
        if case["api"] == "LimitedApi" and SCOPES[case["method"]]:
            # LimitedApi is stale: it sends no access token where today's spec asks for one.
            with pytest.raises(UnauthorizedException, match="missing access token"):
                call(api_client, case)
            return
        result = call(api_client, case)
    if isinstance(result, dict):
        assert result == {}
    else:  # parsed into its model: the sandbox answered with the schema's fields, all filled
        assert isinstance(result, KenarModel)
        assert result.model_dump(exclude_none=True)  # not to_dict(): it leaves read-only fields out
        assert result.additional_properties == {}


def scoped(value: Any) -> Any:
    """Path values the all-scopes token holds resource scopes for."""
    return value.split("/", 1)[0] if isinstance(value, str) and "/a b" in value else value


def test_a_token_without_the_scope_is_refused_naming_it(sandbox: Sandbox) -> None:
    with client_for(sandbox, NO_SCOPES_TOKEN) as api_client, pytest.raises(ForbiddenException) as caught:
        kenar_api_client.FinderApi(api_client).finder_get_user2()
    assert caught.value.data is not None
    assert caught.value.data.code_name == "PERMISSION_DENIED"
    assert "USER_ID or USER_PHONE" in str(caught.value.data.message)


def test_an_operation_with_oauth_security_needs_a_token(sandbox: Sandbox) -> None:
    with client_for(sandbox, "") as api_client, pytest.raises(UnauthorizedException):
        kenar_api_client.PostApi(api_client).post_get_post_stats("wZ3kT9pQ")


def test_a_missing_api_key_is_refused(sandbox: Sandbox) -> None:
    with ApiClient(Configuration(host=sandbox.url)) as api_client, pytest.raises(UnauthorizedException):
        kenar_api_client.AssetsApi(api_client).assets_get_cities()


@pytest.mark.parametrize(
    ("path", "query", "body", "message"),
    [
        ("/v1/open-platform/semantic/users/u1", "", b"", "query parameter phone is required"),
        ("/experimental/open-platform/transactions", "page_size=ten", b"", "is not an integer"),
        ("/v2/open-platform/finder/post", "", b'{"city": 5}', "body.city: expected a string"),
        ("/v1/open-platform/get-user-id-by-phone", "", b"[1]", "must be a JSON object"),
    ],
)
def test_invalid_requests_get_a_googlerpc_status_naming_the_problem(
    sandbox: Sandbox, path: str, query: str, body: bytes, message: str
) -> None:
    import urllib3

    method = "GET" if "transactions" in path else ("DELETE" if "semantic" in path else "POST")
    answer = urllib3.request(
        method,
        f"{sandbox.url}{path}?{query}",
        body=body,
        headers={"X-API-Key": DEMO_API_KEY, "Authorization": f"Bearer {ALL_SCOPES_TOKEN}"},
    )
    assert answer.status == 400
    status = answer.json()
    assert status["code"] == 3
    assert message in status["message"]
