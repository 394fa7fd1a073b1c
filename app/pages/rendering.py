"""Rendering pages: the Jinja2 environment, the layout's context, flash messages,
post/redirect/get, and turning validation errors into messages beside fields."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadData
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import ValidationError

from app.config import Settings, app_settings
from app.errors import human_size
from app.models import ImagePublic
from app.pages.auth import csrf_token, set_csrf_cookie
from app.security import serializer
from app.storage import Rendition, StoredFile

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
FLASH_COOKIE = "flash"

# Autoescaping is on for .html templates: user text is always escaped.
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def configure_templates(settings: Settings) -> None:
    """In development an edited template shows on the next request; in
    production templates never change, so Jinja stops checking every file it
    renders for a newer copy (a stat call per template per request)."""
    templates.env.auto_reload = not settings.is_production


def _format_date(value: datetime) -> str:
    # "21 Nov 2026"
    return f"{value.day} {value:%b %Y}"


templates.env.filters["date"] = _format_date


def _srcset(image: StoredFile | ImagePublic | None) -> str:
    """For <img srcset>: each copy of a picture with its width ("" if none can be shown)."""
    if isinstance(image, ImagePublic):
        return image.srcset
    if isinstance(image, StoredFile):
        try:
            return image.srcset
        except LookupError:
            return ""
    return ""


templates.env.filters["srcset"] = _srcset
templates.env.filters["filesize"] = human_size


# --- links from other sites: the feed, the sitemap, link previews ---------------------

# Link previews (Facebook, LinkedIn, X) ask for pictures at least this wide.
SHARE_IMAGE_WIDTH = 1200


def absolute_url(settings: Settings, url: str) -> str:
    """`url` as a link from outside the site: a path is joined to PUBLIC_URL;
    a URL that already names its host (an S3 or CDN picture) is kept."""
    if url.startswith(("http://", "https://")):
        return url
    return f"{settings.public_url.rstrip('/')}{url}"


@dataclass(frozen=True, slots=True)
class ShareImage:
    url: str
    width: int
    height: int


@pass_context
def _absolute_url_filter(context: Context, url: str) -> str:
    """`{{ "/posts/1" | absolute_url }}`: the address to give other sites."""
    return absolute_url(app_settings(context["request"]), url)


@pass_context
def _share_image_filter(context: Context, image: Any) -> ShareImage | None:
    """`{{ post.image | share_image }}`: the copy of a cover that link previews
    show, with its absolute URL; None without a cover, or with one whose
    storage backend is not configured here.

    The smallest copy at least SHARE_IMAGE_WIDTH wide, so that a preview is
    sharp without the largest download; else the largest there is (covers
    are never enlarged, so a small one has no copy that wide).
    """
    if not isinstance(image, StoredFile) or image.width is None or image.height is None:
        return None
    copies: list[Rendition | StoredFile] = [*image.renditions, image]
    copies.sort(key=lambda copy: copy.width or 0)
    wide_enough = (copy for copy in copies if (copy.width or 0) >= SHARE_IMAGE_WIDTH)
    chosen = next(wide_enough, copies[-1])
    try:
        url = image.rendition_url(chosen) if isinstance(chosen, Rendition) else image.url
    except LookupError:
        return None
    settings = app_settings(context["request"])
    return ShareImage(absolute_url(settings, url), chosen.width or 0, chosen.height or 0)


templates.env.filters["absolute_url"] = _absolute_url_filter
templates.env.filters["share_image"] = _share_image_filter


@dataclass(frozen=True)
class Flash:
    message: str
    category: str = "success"


def _read_flash(request: Request, settings: Settings) -> Flash | None:
    """The message the previous response left for this page, if it is genuine."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = serializer(settings, "flash").loads(raw)
        return Flash(message=str(data["message"]), category=str(data["category"]))
    except (BadData, KeyError, TypeError, UnicodeEncodeError):
        return None


class CsrfToken:
    """The page's CSRF token, made when a form first prints it.

    A page without a form (the post lists, for anyone logged out) then signs
    nothing and sets no cookie, so a shared cache may keep it.
    """

    def __init__(self, request: Request, settings: Settings) -> None:
        self._request = request
        self._settings = settings
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = csrf_token(self._request, self._settings)
        return self._value

    __html__ = __str__


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page in the layout, with who is logged in, a CSRF token and any flash."""
    settings = app_settings(request)
    flash = _read_flash(request, settings)
    page_context = {
        "current_user": getattr(request.state, "user", None),
        "csrf_token": CsrfToken(request, settings),
        # The footer links to /docs only where there is one (DOCS_ENABLED).
        "docs_enabled": settings.docs_enabled,
        "flash": flash,
        "max_upload_mb": round(settings.max_upload_bytes / (1024 * 1024)),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, page_context, status_code=status_code)
    set_csrf_cookie(request, response, settings)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE)
    return response


def redirect(
    request: Request, url: str, message: str | None = None, category: str = "success"
) -> RedirectResponse:
    """Post/redirect/get: answer a form with 303 so a refresh never posts twice."""
    response = RedirectResponse(url, status_code=303)
    if message:
        settings = app_settings(request)
        flash = {"message": message, "category": category}
        response.set_cookie(
            FLASH_COOKIE,
            serializer(settings, "flash").dumps(flash),
            httponly=True,
            samesite="lax",
            secure=settings.is_production,
        )
    return response


def _message(error: Any) -> str:
    context = error.get("ctx", {})
    match error["type"]:
        case "missing" | "string_too_short" if context.get("min_length", 1) <= 1:
            return "Please fill in this field."
        case "string_too_short":
            return f"Use at least {context['min_length']} characters."
        case "string_too_long":
            return f"Use at most {context['max_length']} characters."
        case "value_error" if "email" in str(error.get("msg", "")).lower():
            return "Enter a valid email address, like name@example.com."
        case _:
            return str(error["msg"])


def field_errors(exc: ValidationError) -> dict[str, str]:
    """{field: message} for a form, in words a person understands."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(field, _message(error))
    return errors


def chosen_file(upload: UploadFile | None) -> UploadFile | None:
    """The file a form sent, or None: a file input left empty sends a part
    with no filename."""
    if upload is None or not upload.filename:
        return None
    return upload
