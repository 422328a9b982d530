"""The chat operations and the user endpoints against the sandbox, as a chatbot app meets them."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List

import pytest
import urllib3

import kenar_api_client
from kenar_api_client import (
    ApiClient,
    BadRequestException,
    ChatAPIApi,
    Configuration,
    FinderApi,
    ForbiddenException,
    NotFoundException,
)
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_USER_ID,
    Sandbox,
    consent,
)
from kenar_api_client.webhooks import (
    NewChatbotMessageEvent,
    NewMessageEvent,
    WebhookEvent,
    make_server,
    make_wsgi_app,
)

CHAT_SCOPES = [
    f"CHAT_POST_CONVERSATIONS_READ.{DEMO_POST_TOKEN}",
    f"CHAT_POST_CONVERSATIONS_MESSAGE_SEND.{DEMO_POST_TOKEN}",
    "CHAT_BOT_USER_MESSAGE_SEND",
]
GRID = {"rows": [{"buttons": [{"caption": "بله"}, {"caption": "نه"}]}]}


class Receiver:
    """The webhooks package's verifying receiver on a free loopback port, keeping each event."""

    def __init__(self) -> None:
        self.events: List[WebhookEvent] = []
        self.server = make_server("127.0.0.1", 0, make_wsgi_app(DEMO_IDENTIFICATION_KEY, self.events.append))
        self.server.start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.stop()


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[Sandbox]:
    with Sandbox(webhook_url=receiver.server.url) as running:
        yield running


def client(sandbox: Sandbox, access_token: str, api_key: str = DEMO_API_KEY) -> ApiClient:
    return ApiClient(Configuration(host=sandbox.url, api_key={"APIKey": api_key}, access_token=access_token))


def chat_token(sandbox: Sandbox, scopes: List[str] = CHAT_SCOPES, user_id: str = DEMO_USER_ID) -> str:
    token: str = sandbox.issue_tokens(scopes=scopes, user_id=user_id)["access_token"]
    return token


def buyer_writes(sandbox: Sandbox, receiver: Receiver, **fields: Any) -> NewMessageEvent:
    """A buyer writes about the demo post: the app is subscribed, so it is delivered."""
    with client(sandbox, chat_token(sandbox)) as api_client:
        kenar_api_client.EventsApi(api_client).events_register_event_subscription(
            {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": DEMO_POST_TOKEN}
        )
    assert sandbox.trigger("NEW_MESSAGE", **fields).delivered
    event = receiver.events[-1]
    assert isinstance(event, NewMessageEvent)
    return event


# -- answering a conversation -----------------------------------------------------------------


def test_an_answer_to_a_delivered_message_is_recorded_with_its_buttons(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    event = buyer_writes(sandbox, receiver, text="هنوز موجوده؟")
    conversation_id = str(event.new_message.conversation.id)

    with client(sandbox, chat_token(sandbox)) as api_client:
        ChatAPIApi(api_client).chat_api_conversation_send_message(
            conversation_id, {"message": "بله، موجوده", "receiver_buttons": GRID}
        )

    (sent,) = sandbox.sent_messages
    assert (sent.operation, sent.conversation_id, sent.text, sent.user_id) == (
        "chat_api_conversation_send_message",
        conversation_id,
        "بله، موجوده",
        DEMO_USER_ID,
    )
    assert sent.buttons == {"receiver_buttons": GRID}
    assert DEMO_API_KEY not in repr(sent)
    snapshot = sandbox.snapshot()
    assert snapshot["sent_messages"][0]["text"] == "بله، موجوده"
    assert snapshot["sent_messages"][0]["buttons"] == {"receiver_buttons": GRID}
    assert "api_key" not in snapshot["sent_messages"][0]
    assert [c["id"] for c in snapshot["conversations"]] == [conversation_id]
    assert snapshot["conversations"][0]["post_token"] == DEMO_POST_TOKEN


def test_get_conversation_gives_both_sides_text_messages_oldest_first(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    event = buyer_writes(sandbox, receiver, text="قیمت؟")
    conversation_id = str(event.new_message.conversation.id)
    read = f"CHAT_CONVERSATION_READ.{conversation_id}"
    with client(sandbox, chat_token(sandbox, [*CHAT_SCOPES, read])) as api_client:
        chat = ChatAPIApi(api_client)
        chat.chat_api_conversation_send_message(conversation_id, {"message": "۹۰۰ میلیون"})
        upload = chat.chat_api_generate_upload_token({})
        assert upload.token
        chat.chat_api_conversation_send_message(conversation_id, {"message": "", "media_token": upload.token})
        answer = chat.chat_api_get_conversation(conversation_id)

    assert answer.conversation.id == conversation_id
    assert answer.conversation.post_token == DEMO_POST_TOKEN
    assert [
        (m.sender.side.value if m.sender and m.sender.side else None, m.text) for m in answer.messages
    ] == [
        ("BUYER", "قیمت؟"),
        ("SELLER", "۹۰۰ میلیون"),
    ]
    assert [m.media_token for m in sandbox.sent_messages] == ["", upload.token]


def test_an_unknown_conversation_is_refused_and_nothing_is_recorded(sandbox: Sandbox) -> None:
    with client(sandbox, chat_token(sandbox)) as api_client, pytest.raises(NotFoundException) as refused:
        ChatAPIApi(api_client).chat_api_conversation_send_message("made-up-id", {"message": "سلام"})

    assert refused.value.data is not None
    assert refused.value.data.code_name == "NOT_FOUND"
    assert "'made-up-id' is not known" in str(refused.value.data.message)
    assert sandbox.sent_messages == []


def test_a_key_without_the_chat_permission_is_refused_like_events_send(sandbox: Sandbox) -> None:
    conversation = sandbox.add_conversation(DEMO_POST_TOKEN)
    sandbox.add_api_key("events-only-key", ["EVENTS_SEND", "EVENTS_REGISTER_SUBSCRIPTION"])
    api_client = client(sandbox, chat_token(sandbox), "events-only-key")
    with api_client, pytest.raises(ForbiddenException) as refused:
        ChatAPIApi(api_client).chat_api_conversation_send_message(conversation.id, {"message": "hi"})

    assert refused.value.data is not None
    assert refused.value.data.message == "the API key lacks permission CHAT_SEND_MESSAGE_OAUTH"
    assert sandbox.sent_messages == []


def test_a_missing_scope_is_named_for_this_conversation_and_its_post(sandbox: Sandbox) -> None:
    conversation = sandbox.add_conversation(DEMO_POST_TOKEN, conversation_id="conv-5f")
    token = chat_token(sandbox, ["CHAT_POST_CONVERSATIONS_MESSAGE_SEND.otherPost"])
    with client(sandbox, token) as api_client, pytest.raises(ForbiddenException) as refused:
        ChatAPIApi(api_client).chat_api_conversation_send_message(conversation.id, {"message": "hi"})

    assert refused.value.data is not None
    assert refused.value.data.message == (
        f"the access token lacks scope CHAT_POST_CONVERSATIONS_MESSAGE_SEND.{DEMO_POST_TOKEN} "
        "or CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND or CONVERSATION_SEND_MESSAGE.conv-5f"
    )


@pytest.mark.parametrize(
    "scope", ["CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND", "CONVERSATION_SEND_MESSAGE.conv-6"]
)
def test_each_scope_the_spec_lists_is_enough(sandbox: Sandbox, scope: str) -> None:
    sandbox.add_conversation(DEMO_POST_TOKEN, conversation_id="conv-6")
    with client(sandbox, chat_token(sandbox, [scope])) as api_client:
        ChatAPIApi(api_client).chat_api_conversation_send_message("conv-6", {"message": "hi"})
    assert [m.conversation_id for m in sandbox.sent_messages] == ["conv-6"]


def test_another_users_conversation_is_refused(sandbox: Sandbox) -> None:
    sandbox.add_conversation("theirPost", user_id="someone-else", conversation_id="conv-7")
    token = chat_token(sandbox, ["CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND"])
    with client(sandbox, token) as api_client, pytest.raises(ForbiddenException, match="not one of the auth"):
        ChatAPIApi(api_client).chat_api_conversation_send_message("conv-7", {"message": "hi"})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"message": "hi", "media_token": "sandbox-upload-x"}, "either message or media_token, not both"),
        ({"message": ""}, "message is required (or a media_token)"),
        ({"message": "", "media_token": "never-issued"}, "'never-issued' is not an upload token"),
        (
            {"message": "hi", "sender_buttons": {"rows": "no"}},
            "body.sender_buttons.rows: expected a JSON array",
        ),
    ],
)
def test_a_message_kenar_would_refuse_is_refused_before_anything_is_recorded(
    sandbox: Sandbox, body: Dict[str, Any], fragment: str
) -> None:
    sandbox.add_conversation(DEMO_POST_TOKEN, conversation_id="conv-8")
    answer = urllib3.request(
        "POST",
        f"{sandbox.url}/v2/open-platform/conversations/conv-8/messages",
        json=body,
        headers={"X-API-Key": DEMO_API_KEY, "Authorization": f"Bearer {chat_token(sandbox)}"},
    )
    assert answer.status == 400
    assert fragment in answer.json()["message"]
    assert sandbox.sent_messages == []


# -- the chatbot ------------------------------------------------------------------------------------


def test_the_chatbot_answers_a_user_in_the_conversation_of_their_message(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    assert sandbox.trigger("NEW_CHATBOT_MESSAGE", text="سلام ربات").delivered
    event = receiver.events[-1]
    assert isinstance(event, NewChatbotMessageEvent)
    conversation_id = str(event.new_chatbot_message.conversation.id)

    with client(sandbox, chat_token(sandbox)) as api_client:
        chat = ChatAPIApi(api_client)
        answer = chat.chat_api_chat_bot_send_message(
            conversation_id, {"text_message": "سلام! چطور کمک کنم؟", "buttons": GRID}
        )
        assert answer.conversation_id == conversation_id
        with pytest.raises(NotFoundException, match="chatbot conversation 'no-such' is not known"):
            chat.chat_api_chat_bot_send_message("no-such", {"text_message": "hi"})

    (sent,) = sandbox.sent_messages
    assert (sent.operation, sent.text, sent.buttons) == (
        "chat_api_chat_bot_send_message",
        "سلام! چطور کمک کنم؟",
        {"buttons": GRID},
    )


def test_the_chatbot_writes_to_the_authenticated_user_only_in_one_conversation(sandbox: Sandbox) -> None:
    with client(sandbox, chat_token(sandbox)) as api_client:
        chat = ChatAPIApi(api_client)
        first = chat.chat_api_chat_bot_send_message2(DEMO_USER_ID, {"text_message": "یک"})
        second = chat.chat_api_chat_bot_send_message4(DEMO_USER_ID, {"text_message": "دو"})
        with pytest.raises(
            ForbiddenException, match="user_id 'u-other' is not the id of the authenticated user"
        ):
            chat.chat_api_chat_bot_send_message2("u-other", {"text_message": "سه"})

    assert first.conversation_id
    assert first.conversation_id == second.conversation_id
    (conversation,) = sandbox.conversations
    assert (conversation.id, conversation.type, conversation.user_id) == (
        first.conversation_id,
        "BOT",
        DEMO_USER_ID,
    )
    assert [m.text for m in sandbox.sent_messages] == ["یک", "دو"]


def test_reset_forgets_conversations_and_sent_messages(sandbox: Sandbox) -> None:
    conversation = sandbox.add_conversation(DEMO_POST_TOKEN)
    with client(sandbox, chat_token(sandbox)) as api_client:
        ChatAPIApi(api_client).chat_api_conversation_send_message(conversation.id, {"message": "hi"})
    sandbox.reset()
    assert (sandbox.conversations, sandbox.sent_messages) == ([], [])


# -- who logged in ----------------------------------------------------------------------------------


def test_the_users_endpoint_answers_the_user_who_consented(sandbox: Sandbox) -> None:
    from kenar_api_client.oauth import OAuthClient

    sandbox.set_consent("sara-1", posts=["AbCd1234"])
    oauth = OAuthClient(
        DEMO_CLIENT_ID, "kenar-sandbox-demo-client-secret", DEMO_REDIRECT_URI, sandbox.oauth_url
    )
    url, state = oauth.authorization_url(["USER_ID"])
    token = oauth.complete_authorization(consent(url), state)

    with client(sandbox, token.access_token) as api_client:
        user = FinderApi(api_client).finder_get_user2()
        posted = FinderApi(api_client).finder_get_user({})

    assert user.user_id == "sara-1"
    assert posted.user_id == "sara-1"
    assert not user.phone_number  # USER_PHONE was not granted


def test_the_phone_comes_with_user_phone_only(sandbox: Sandbox) -> None:
    with client(sandbox, chat_token(sandbox, ["USER_PHONE"], user_id="reza-2")) as api_client:
        user = FinderApi(api_client).finder_get_user2()
    assert not user.user_id
    assert user.phone_number is not None
    assert re.fullmatch(r"09\d{9}", user.phone_number)
    assert user.phone_numbers == [user.phone_number]


def test_the_users_endpoint_needs_user_id_or_user_phone(sandbox: Sandbox) -> None:
    api_client = client(sandbox, chat_token(sandbox, ["SEND_EVENT"]))
    with api_client, pytest.raises(ForbiddenException, match=r"lacks scope USER_ID or USER_PHONE$"):
        FinderApi(api_client).finder_get_user2()


def test_a_conversation_without_a_post_token_or_user_is_refused_by_add_conversation(sandbox: Sandbox) -> None:
    from kenar_api_client.sandbox import SandboxError

    with pytest.raises(SandboxError, match="post_token"):
        sandbox.add_conversation("")
    with pytest.raises(SandboxError, match="user_id"):
        sandbox.add_conversation(DEMO_POST_TOKEN, user_id="")
    with pytest.raises(BadRequestException), client(sandbox, chat_token(sandbox)) as api_client:
        ChatAPIApi(api_client).chat_api_chat_bot_send_message2(DEMO_USER_ID, {"text_message": " "})
