"""The chat side of a sandbox: the conversations it knows, their messages, what the app sent.

A conversation comes into being the way it does on Divar, when someone writes: a triggered
``NEW_MESSAGE`` (a buyer about a post) or ``NEW_CHATBOT_MESSAGE`` (a user to the app's
chatbot), or ``Sandbox.add_conversation``. The chat operations answer only conversations
known here, and every message the app sends through them is recorded as sent.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional

#: A conversation about a post, between a buyer and the post's owner.
POST = "POST"
#: A conversation between a user and the app's chatbot.
BOT = "BOT"


@dataclass(frozen=True)
class Conversation:
    """A chat the app can answer: about a post (``type`` ``"POST"``) or with its chatbot (``"BOT"``).

    ``user_id`` is the Divar user on the app's side of it: the post's owner, or the user
    talking to the chatbot. ``post_token`` is ``""`` for a chatbot conversation.
    """

    id: str
    type: str
    post_token: str
    user_id: str
    at: datetime

    def to_api(self) -> Dict[str, Any]:
        """As the chat API writes a conversation (``chatapiConversation``)."""
        document: Dict[str, Any] = {"id": self.id, "type": self.type}
        if self.post_token:
            document["post_token"] = self.post_token
        return document

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "type": self.type,
            "post_token": self.post_token,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation, from either side: the ``side`` is ``"BUYER"`` (the
    other party: a buyer, or the chatbot's user) or ``"SELLER"`` (the app)."""

    id: str
    conversation_id: str
    side: str
    sender_type: str
    type: str
    text: str
    at: datetime


@dataclass(frozen=True)
class SentMessage:
    """A message the app sent through a chat operation, as it sent it.

    ``operation`` is the SDK method it called; ``text`` and ``media_token`` are ``""`` when
    not sent; ``buttons`` holds the button grids sent, by field name (``sender_buttons``,
    ``receiver_buttons``, or ``buttons`` for the chatbot); ``user_id`` is the caller's user.
    """

    operation: str
    conversation_id: str
    text: str
    media_token: str
    buttons: Dict[str, Any]
    user_id: str
    api_key: str = field(repr=False)
    at: datetime

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict, without the API key."""
        return {
            "operation": self.operation,
            "conversation_id": self.conversation_id,
            "text": self.text,
            "media_token": self.media_token,
            "buttons": self.buttons,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
        }


class ChatBook:
    """Conversations, their messages, the app's sent messages and the upload tokens it was
    given; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conversations: Dict[str, Conversation] = {}
        self._messages: List[ChatMessage] = []
        self._sent: List[SentMessage] = []
        self._upload_tokens: List[str] = []

    def add_conversation(self, conversation: Conversation) -> Conversation:
        """Record ``conversation``; one already known by its id is kept, and returned."""
        with self._lock:
            return self._conversations.setdefault(conversation.id, conversation)

    def record_delivery(
        self, event_type: str, message: Mapping[str, Any], user_id: str, at: datetime
    ) -> None:
        """Record the conversation and the message of a ``NEW_MESSAGE`` (``"POST"``) or
        ``NEW_CHATBOT_MESSAGE`` (``"BOT"``) payload; ``user_id`` is the app's side of it."""
        conversation = message.get("conversation")
        if not isinstance(conversation, Mapping) or not isinstance(conversation.get("id"), str):
            return  # a payload made malformed on purpose: nothing the app could answer
        kind = BOT if event_type == "NEW_CHATBOT_MESSAGE" else POST
        post_token = conversation.get("post_token") if kind == POST else ""
        known = self.add_conversation(
            Conversation(
                conversation["id"], kind, post_token if isinstance(post_token, str) else "", user_id, at
            )
        )
        sender = message.get("sender")
        sender_type = sender.get("type") if isinstance(sender, Mapping) else None
        text = message.get("text")
        self.add_message(
            ChatMessage(
                id=str(message.get("id") or ""),
                conversation_id=known.id,
                side="BUYER",
                sender_type=str(sender_type or "HUMAN"),
                type=str(message.get("type") or "TEXT"),
                text=text if isinstance(text, str) else "",
                at=at,
            )
        )

    def conversation(self, conversation_id: str) -> Optional[Conversation]:
        """The conversation ``conversation_id``, or None."""
        with self._lock:
            return self._conversations.get(conversation_id)

    def conversations(self) -> List[Conversation]:
        """Every conversation, oldest first."""
        with self._lock:
            return list(self._conversations.values())

    def bot_conversation(self, user_id: str) -> Optional[Conversation]:
        """The newest chatbot conversation of ``user_id``, or None."""
        with self._lock:
            found = [c for c in self._conversations.values() if c.type == BOT and c.user_id == user_id]
        return found[-1] if found else None

    def add_message(self, message: ChatMessage) -> None:
        """Record a message of a conversation."""
        with self._lock:
            self._messages.append(message)

    def messages(self, conversation_id: str) -> List[ChatMessage]:
        """The messages of a conversation, oldest first."""
        with self._lock:
            return [m for m in self._messages if m.conversation_id == conversation_id]

    def add_sent(self, sent: SentMessage) -> None:
        """Record what the app sent."""
        with self._lock:
            self._sent.append(sent)

    def sent(self) -> List[SentMessage]:
        """What the app sent, oldest first."""
        with self._lock:
            return list(self._sent)

    def issue_upload_token(self) -> str:
        """A new media upload token, as ``chat_api_generate_upload_token`` gives."""
        token = "sandbox-upload-" + secrets.token_urlsafe(12)
        with self._lock:
            self._upload_tokens.append(token)
        return token

    def issued_upload_token(self, token: str) -> bool:
        """Whether ``token`` is an upload token this sandbox gave out."""
        with self._lock:
            return token in self._upload_tokens

    def clear(self) -> None:
        """Forget every conversation, message, sent message and upload token."""
        with self._lock:
            self._conversations.clear()
            self._messages.clear()
            self._sent.clear()
            self._upload_tokens.clear()
