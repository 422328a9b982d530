"""What the generated API adds over the official client, checked over real HTTP on a loopback server."""

from __future__ import annotations

import datetime
import inspect
import subprocess
import sys

import pydantic
import pytest
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client import (
    ApiClient,
    ChatAPIApi,
    ChatapiGetConversationResponse,
    FinderApi,
    ForbiddenException,
    MessageImageData,
    PostApi,
)
from kenar_api_client.security import oauth_scopes_for, permissions_for, scope_choices


def test_an_enum_value_the_spec_does_not_list_is_refused_before_sending(
    api_client: ApiClient, server: RecordingServer
) -> None:
    with pytest.raises(pydantic.ValidationError, match="type"):
        PostApi(api_client).post_set_post_customized_button(
            "wZ3kT9pQ", {"button": {"type": "NOT_A_BUTTON_TYPE"}}
        )
    assert server.requests == []


def test_answers_keep_unknown_enum_values_and_fields_and_parse_dates(
    api_client: ApiClient, server: RecordingServer
) -> None:
    server.queue_reply(
        Reply(
            body={
                "conversation": {"id": "c-1", "type": "GROUP_CHAT", "brand_new_field": 1},
                "messages": [{"id": "m-1", "sent_at": "2025-03-01T10:30:00Z", "type": "STICKER"}],
            }
        )
    )
    answer = ChatAPIApi(api_client).chat_api_get_conversation("c-1")
    assert isinstance(answer, ChatapiGetConversationResponse)
    assert answer.conversation is not None
    assert answer.conversation.type == "GROUP_CHAT"
    assert answer.conversation.additional_properties == {"brand_new_field": 1}
    message = answer.messages[0]  # type: ignore[index]
    assert message.type == "STICKER"
    assert message.sent_at == datetime.datetime(2025, 3, 1, 10, 30, tzinfo=datetime.timezone.utc)
    assert answer.to_dict()["conversation"]["type"] == "GROUP_CHAT"


def test_int64_fields_accept_protobufs_string_form() -> None:
    image = MessageImageData.from_dict({"width_px": "1280", "height_px": 720})
    assert image is not None
    assert (image.width_px, image.height_px) == (1280, 720)
    with pytest.raises(pydantic.ValidationError):
        MessageImageData(width_px="wide")  # type: ignore[arg-type]


def test_error_answers_carry_the_google_rpc_status(api_client: ApiClient, server: RecordingServer) -> None:
    server.queue_reply(
        Reply(status=403, body={"code": 7, "message": "the API key lacks GET_POST", "details": []})
    )
    with pytest.raises(ForbiddenException) as caught:
        FinderApi(api_client).finder_get_post("wZ3kT9pQ")
    assert caught.value.data is not None
    assert caught.value.data.code_name == "PERMISSION_DENIED"


def test_the_access_token_is_sent_only_where_the_spec_names_oauth(
    api_client: ApiClient, server: RecordingServer
) -> None:
    FinderApi(api_client).finder_get_post("wZ3kT9pQ")
    assert "Authorization" not in server.last.headers
    FinderApi(api_client).finder_get_user2()
    assert server.last.headers["Authorization"].startswith("Bearer ")


def test_docstrings_name_the_permission_and_scopes() -> None:
    doc = inspect.getdoc(PostApi.post_edit_post_v2) or ""
    assert "``EDIT_POST``" in doc
    assert "``EDIT_USER_POST``, ``POST_EDIT.post_token``" in doc


def test_scopes_lookup_builds_what_to_ask_the_user_for() -> None:
    assert scope_choices("finder_get_user2") == ("USER_ID", "USER_PHONE")
    assert scope_choices(FinderApi.finder_get_post) == ()
    assert permissions_for("post_get_post_stats", "events_send_event") == [
        "EVENTS_SEND",
        "POST_STATS_RETRIEVE",
    ]
    scopes = oauth_scopes_for(
        PostApi.post_edit_post_with_http_info, "finder_get_user2", resource_ids={"post_token": "wZ3kT9pQ"}
    )
    assert scopes == ["POST_EDIT.wZ3kT9pQ", "USER_ID"]
    with pytest.raises(ValueError, match="post_token"):
        oauth_scopes_for("post_edit_post")
    with pytest.raises(ValueError, match="unknown operation"):
        oauth_scopes_for("post_edit_everything")


def test_limited_api_is_deprecated_in_favour_of_payment_api(api_client: ApiClient) -> None:
    from kenar_api_client.api.limited_api import LimitedApi

    with pytest.warns(DeprecationWarning, match="use PaymentApi") as warned:
        LimitedApi(api_client)
    assert warned[0].filename == __file__  # points at the caller's line


def test_importing_the_package_or_one_api_builds_no_model() -> None:
    script = (
        "import sys, kenar_api_client\n"
        "before = {m for m in sys.modules if m.startswith('kenar_api_client.models.')}\n"
        "kenar_api_client.FinderApi\n"
        "after = {m for m in sys.modules if m.startswith('kenar_api_client.models.')}\n"
        "print(len(before), len(after), 'pydantic' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["0", "0", "False"]
    assert kenar_api_client.__all__.count("FinderApi") == 1
