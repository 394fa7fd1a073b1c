"""Mail: messages rendered from templates, sent once the request is done.

With `SMTP_HOST` set, aiosmtplib sends through that server (STARTTLS by
default, or TLS from the first byte, with credentials when given). Without
it, each message is written as an `.eml` file under `MAIL_DIR` and its link
is logged, so a fresh clone needs no mail server to reset a password.

Routes hand messages to FastAPI's `BackgroundTasks`, which run after the
response is sent: after the commit, with no database connection held, and
without making the user wait for a slow mail server. A send that fails is
logged; the change the user made stays made (they can ask for the mail
again).
"""

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.config import Settings

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "mail"
SEND_TIMEOUT_SECONDS = 15

# Plain text is not escaped (a link stays a link); HTML is.
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    # The link the message is about, logged when mail is written to files.
    link: str | None = None


def render_mail(template: str, *, to: str, subject: str, link: str, **context: object) -> Mail:
    """A message from `templates/mail/<template>.txt` and `.html`."""
    values = {"subject": subject, "link": link, **context}
    return Mail(
        to=to,
        subject=subject,
        text=_templates.get_template(f"{template}.txt").render(values),
        html=_templates.get_template(f"{template}.html").render(values),
        link=link,
    )


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid()
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: Mail) -> None:
        """Send the message, or write it to a file; log a failure, never raise it."""
        message = self.message(mail)
        try:
            if self.settings.smtp_host:
                await self._send_smtp(message)
            else:
                path = await asyncio.to_thread(self._write, message)
                logger.info("Mail to %s written to %s; its link: %s", mail.to, path, mail.link)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            logger.exception("Could not send mail to %s (%s)", mail.to, mail.subject)

    async def _send_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=SEND_TIMEOUT_SECONDS,
        )

    def _write(self, message: EmailMessage) -> Path:
        directory = self.settings.mail_dir
        directory.mkdir(parents=True, exist_ok=True)
        # Sorted by when they were written; the random part keeps names unique.
        path = directory / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}.eml"
        path.write_bytes(message.as_bytes())
        return path
