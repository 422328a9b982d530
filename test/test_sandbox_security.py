"""Every operation is authorised as the spec declares it: the API key's permissions, the token, the
scopes, named in a refusal for the resource the call is about."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import urllib3
from wire_cases import load_cases

import kenar_api_client
from kenar_api_client import ApiClient, Configuration, ForbiddenException
from kenar_api_client._operation_security import OPERATION_SECURITY
from kenar_api_client.sandbox import DEMO_API_KEY, DEMO_API_KEY_PERMISSIONS, AccessToken, Sandbox
from kenar_api_client.sandbox._spec_operations import OPERATIONS

EVERY_PERMISSION = sorted({p for permissions, _ in OPERATION_SECURITY.values() for p in permissions})
SCOPED_TOKEN = "token-every-plain-scope-61a0"
NO_SCOPES_TOKEN = "token-no-scope-61a1"
ROUTES = {row[2]: (row[0], row[1]) for row in OPERATIONS}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    plain_scopes = sorted({s for _, scopes in OPERATION_SECURITY.values() for s in scopes if "." not in s})
    tokens = {
        SCOPED_TOKEN: AccessToken("demo-user-7f3a", plain_scopes, ["wZ3kT9pQ"]),
        NO_SCOPES_TOKEN: AccessToken("demo-user-7f3a", [], ["wZ3kT9pQ"]),
    }
    with Sandbox(access_tokens=tokens) as running:
        for name, (permissions, _) in OPERATION_SECURITY.items():
            running.add_api_key(f"key-without-{name}", [p for p in EVERY_PERMISSION if p not in permissions])
        yield running


def raw_call(sandbox: Sandbox, operation: str, api_key: str, token: str) -> Tuple[int, Dict[str, Any]]:
    """Call ``operation`` over HTTP with an empty body: authorisation comes before the arguments."""
    method, template = ROUTES[operation]
    path = re.sub(r"{\w+}", "x1", template)
    answer = urllib3.request(
        method,
        f"{sandbox.url}{path}",
        body=b"",
        headers={"X-API-Key": api_key, "Authorization": f"Bearer {token}"},
        retries=False,
    )
    document: Dict[str, Any] = answer.json()
    return answer.status, document


NEEDS_PERMISSIONS = sorted(name for name, (permissions, _) in OPERATION_SECURITY.items() if permissions)
NEEDS_TOKEN = sorted(name for name, (_, scopes) in OPERATION_SECURITY.items() if scopes)


def test_the_demo_key_has_every_permission_the_spec_names() -> None:
    assert sorted(DEMO_API_KEY_PERMISSIONS) == EVERY_PERMISSION


@pytest.mark.parametrize("operation", NEEDS_PERMISSIONS)
def test_a_key_without_the_operations_permission_is_refused_naming_it(
    sandbox: Sandbox, operation: str
) -> None:
    status, document = raw_call(sandbox, operation, f"key-without-{operation}", SCOPED_TOKEN)

    permissions = OPERATION_SECURITY[operation][0]
    assert (status, document["code"]) == (403, 7)
    assert document["message"] == f"the API key lacks permission {' and '.join(permissions)}"
    assert sandbox.requests[-1].status == 403


@pytest.mark.parametrize("operation", sorted(OPERATION_SECURITY))
def test_an_unknown_api_key_is_refused_by_every_operation(sandbox: Sandbox, operation: str) -> None:
    status, document = raw_call(sandbox, operation, "no-such-key-61a2", SCOPED_TOKEN)

    assert (status, document["code"], document["message"]) == (401, 16, "the API key is not valid")


@pytest.mark.parametrize("operation", NEEDS_TOKEN)
def test_an_access_token_the_sandbox_does_not_know_is_refused(sandbox: Sandbox, operation: str) -> None:
    status, document = raw_call(sandbox, operation, DEMO_API_KEY, "no-such-token-61a3")

    assert (status, document["code"], document["message"]) == (401, 16, "the access token is not valid")


def wire_case(method: str) -> Dict[str, Any]:
    return next(case for case in load_cases() if case["method"] == method and case["api"] != "LimitedApi")


# (operation, the path value the call is about, the scopes the refusal must name)
RESOURCE_SCOPE_CASES: List[Tuple[str, str, str]] = [
    ("addons_create_business_addon", "biz-42", "BUSINESS_ADDON_CREATE.biz-42"),
    ("addons_create_post_addon_v2", "pT42", "POST_ADDON_CREATE.pT42 or USER_POSTS_ADDON_CREATE"),
    (
        "post_create_business_customized_button",
        "biz-43",
        "BUSINESS_CREATE_CUSTOMIZED_BUTTON.biz-43",
    ),
    ("post_edit_post", "pT43", "POST_EDIT.pT43"),
    ("post_edit_post_v2", "pT44", "EDIT_USER_POST or POST_EDIT.pT44"),
    ("semantic_create_post_semantic", "pT45", "POST_SEMANTIC_CREATE.pT45"),
]


@pytest.mark.parametrize(("operation", "resource", "named"), RESOURCE_SCOPE_CASES)
def test_a_missing_resource_scope_is_named_for_the_resource_of_the_call(
    sandbox: Sandbox, operation: str, resource: str, named: str
) -> None:
    case = wire_case(operation)
    path_param = next(name for name, value in case["kwargs"].items() if isinstance(value, str))
    kwargs = {**case["kwargs"], path_param: resource}
    configuration = Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=NO_SCOPES_TOKEN
    )
    with ApiClient(configuration) as api_client, pytest.raises(ForbiddenException) as refused:
        getattr(getattr(kenar_api_client, case["api"])(api_client), operation)(**kwargs)

    assert refused.value.data is not None
    assert refused.value.data.message == f"the access token lacks scope {named}"


def test_a_resource_scope_for_the_resource_of_the_call_is_enough(sandbox: Sandbox) -> None:
    case = wire_case("post_edit_post")
    sandbox.add_access_token("token-edit-pT46", "demo-user-7f3a", ["POST_EDIT.pT46"])
    configuration = Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token="token-edit-pT46"
    )
    with ApiClient(configuration) as api_client:
        posts = kenar_api_client.PostApi(api_client)
        posts.post_edit_post("pT46", case["kwargs"]["post_edit_post_body"])
        with pytest.raises(ForbiddenException, match=r"lacks scope POST_EDIT\.pT47$"):
            posts.post_edit_post("pT47", case["kwargs"]["post_edit_post_body"])
