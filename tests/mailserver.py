"""A real SMTP server for the tests (aiosmtpd), on 127.0.0.1, keeping what it receives."""

import asyncio
import re
import socket
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://\S+")


class Inbox:
    """The aiosmtpd handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    def last_link(self, address: str) -> str:
        """The link in the plain-text body of the newest message to `address`."""
        messages = self.to(address)
        assert messages, f"no mail to {address}; got {[m['To'] for m in self.messages]}"
        text = text_body(messages[-1])
        (link,) = LINK.findall(text)
        return str(link)


async def wait_for_mail(inbox: Inbox, address: str, count: int = 1) -> None:
    """Wait (10 s at most) until `count` messages to `address` arrived: a
    real server sends mail after its response, so a test can read the page
    before the mail lands."""
    async with asyncio.timeout(10):
        # The SMTP server runs in a thread of its own, with its own loop.
        while len(inbox.to(address)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
