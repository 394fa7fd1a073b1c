"""Pure ASGI middleware: security headers on every response, a cap on
request bodies, and HEAD wherever GET works.

Pure ASGI (rather than Starlette's BaseHTTPMiddleware) works on the messages
as they pass, without wrapping the body in extra tasks and queues.
"""

import base64
import hashlib
from functools import lru_cache
from html.parser import HTMLParser

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import human_size

# Only this origin's scripts and styles, so an injected <script> cannot run;
# images may also come from blob: (previews of a chosen file) and data:.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:{image_origins}; script-src 'self'; "
    "style-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The API docs pages (app/docs.py) load Swagger UI and ReDoc from this origin
# too. Swagger UI is started by an inline script, allowed by its hash alone
# ({script_hashes}: see `docs_policy`), so an injected script still cannot run.
# Styles may be inline: ReDoc writes <style> elements as it runs, which no
# hash can cover (Swagger UI alone would do without). ReDoc also runs its
# search in a worker made from a blob: URL.
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'{script_hashes}; "
    "style-src 'self' 'unsafe-inline'; worker-src blob:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Features no page here uses, denied to every page (and anything injected).
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "accelerometer=(), gyroscope=(), magnetometer=()"
)
# Production only: browsers remember to use HTTPS for a year (and never
# accept a certificate error). Sent over plain HTTP it is ignored.
HSTS = "max-age=31536000; includeSubDomains"


@lru_cache(maxsize=8)
def docs_policy(page: bytes) -> str:
    """DOCS_POLICY for one docs page, allowing exactly the inline scripts in it.

    A page's script names its URLs, which follow the root path a proxy gives,
    so each page is hashed as it is sent (once per different page: cached).
    """
    scripts = _InlineScripts()
    scripts.feed(page.decode())
    scripts.close()
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in scripts.found
    )
    return DOCS_POLICY.format(script_hashes=hashes)


class _InlineScripts(HTMLParser):
    """The text of each <script> without a src, exactly as the browser hashes it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and "src" not in dict(attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.found.append("".join(self._current))
            self._current = None


class SecurityHeadersMiddleware:
    """Security headers on every response. A response that already has one of
    them keeps its own: the API docs pages bring their own policy (app/docs.py)."""

    def __init__(
        self, app: ASGIApp, image_origins: tuple[str, ...] = (), *, hsts: bool = False
    ) -> None:
        self.app = app
        extra = "".join(f" {origin}" for origin in image_origins)
        self.page_policy = PAGE_POLICY.format(image_origins=extra)
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                headers.setdefault("Content-Security-Policy", self.page_policy)
                headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, without reading them whole.

    A declared Content-Length over the limit is refused before any byte of the
    body is read; a body that grows past it (chunked uploads) is refused as soon
    as it does. The 413 is raised where the app reads the body, so the usual
    error handlers answer (JSON for the API, a page for the site).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if too_large:
                raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413, f"The upload is too large. The limit is {human_size(self.max_bytes)}."
        )


class HeadAsGetMiddleware:
    """Answer HEAD wherever GET answers: run the request as a GET and drop the body.

    Starlette's `Route` answers HEAD on every GET route, but FastAPI's
    `APIRoute` (what `@router.get` makes) does not, so pages, the API and
    `/health` would answer HEAD with 405, which uptime monitors report as
    down. The status and headers, Content-Length and Content-Type included,
    are exactly those of the GET. A route without GET answers HEAD with the
    same 405 it gives a GET.

    Paths under `native_head` (the static and media files) go through
    untouched: Starlette's StaticFiles answers HEAD itself, without reading
    the file.
    """

    def __init__(self, app: ASGIApp, native_head: tuple[str, ...] = ()) -> None:
        self.app = app
        self.native_head = native_head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or scope["path"].startswith(self.native_head)
        ):
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
