"""The pages' side of logging in, and whether a form is genuine: the login
cookie, CSRF tokens, and where `next=` may lead. The dependencies built on
them (`PageUser`, the CSRF check on every page router) are in app/deps.py.

The cookie holds the same signed access token the API hands out
(app/security.py); here it travels HttpOnly and SameSite=Lax, so page
scripts cannot read it and other sites' forms do not send it.
"""

import secrets
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response
from itsdangerous import Signer

from app.config import Settings
from app.errors import Forbidden
from app.models import User
from app.security import create_access_token, serializer

# Requests that change nothing, so carry no form to check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LOGIN_COOKIE = "access_token"
CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"


def set_login_cookie(response: Response, user: User, settings: Settings) -> None:
    """Log a browser in: the same token the API issues, where scripts cannot
    read it. The CSRF cookie is renewed with it (see `rotate_csrf`)."""
    response.set_cookie(
        LOGIN_COOKIE,
        create_access_token(user, settings),
        max_age=settings.access_token_expire_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=settings.is_production,
    )

    rotate_csrf(response, settings)


def clear_login_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        LOGIN_COOKIE, httponly=True, samesite="lax", secure=settings.is_production
    )
    rotate_csrf(response, settings)


class LoginRequired(Exception):
    """A page needs a logged-in user; answered with a redirect to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def login_url(self) -> str:
        return "/login?" + urlencode({"next": self.next_path})


def login_path(request: Request) -> str:
    """Where to land after logging in, for a request that needed a login."""
    if request.method == "GET":
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")
    # After logging in, land on the page the form was on (if it was on this
    # site), not on a POST-only URL.
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return "/"
    return safe_next_path(referer._replace(scheme="", netloc="").geturl())


def safe_next_path(value: str | None) -> str:
    """`value` if it is a path on this site, else "/": `next=` must not send users away.

    Refuses `//evil.example` and `/\\evil.example` (browsers read both as another
    host), absolute URLs, and control characters.
    """
    if not value or any(ord(char) < 32 for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _csrf_signer(settings: Settings) -> Signer:
    return serializer(settings, "csrf").make_signer()


def csrf_token(request: Request, settings: Settings) -> str:
    """The token for this browser's forms (a signed double-submit cookie).

    The browser holds a random value in a cookie; forms carry its signature. Another
    site can make the browser send the cookie, but can neither read it nor
    compute the signature, so it cannot forge the field. A browser without the
    cookie gets a new value, which `set_csrf_cookie` puts on the response.
    """
    cookie_value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not cookie_value:
        cookie_value = request.state.new_csrf = secrets.token_urlsafe(32)
    return _csrf_signer(settings).get_signature(cookie_value).decode()


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    new_value = getattr(request.state, "new_csrf", None)
    if new_value:
        _set_csrf(response, new_value, settings)


def rotate_csrf(response: Response, settings: Settings) -> None:
    """A new CSRF value at login and logout, so that a token planted in a
    browser before (by another site, or a shared computer's last user) is
    refused after."""
    _set_csrf(response, secrets.token_urlsafe(32), settings)


def _set_csrf(response: Response, value: str, settings: Settings) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="lax", secure=settings.is_production
    )


class CsrfFailed(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This form has expired or was sent from another site. "
            "Go back, reload the page and try again."
        )


async def verify_csrf(request: Request, settings: Settings) -> None:
    """Refuse a state-changing page request whose form lacks a valid CSRF token."""
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    cookie_value = request.cookies.get(CSRF_COOKIE)
    # A signature is ASCII; anything else (even a lone surrogate) is no token.
    if not isinstance(submitted, str) or not submitted.isascii() or not cookie_value:
        raise CsrfFailed
    if not _csrf_signer(settings).verify_signature(cookie_value, submitted):
        raise CsrfFailed
