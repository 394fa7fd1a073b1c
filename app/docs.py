"""The API docs: Swagger UI at /docs and ReDoc at /redoc, served by this app.

FastAPI's built-in docs pages load Swagger UI and ReDoc from a CDN, so they
are blank offline and run a third party's code beside the API. `create_app`
turns them off (`docs_url=None`, `redoc_url=None`) and calls `add_docs`, which
serves the same pages with their files from this app, as FastAPI's guide
"Custom Docs UI Static Assets (Self-Hosting)" shows.

The files (Swagger UI 5, which renders OpenAPI 3.1, and ReDoc) come from the
openapi-ui-bundles package, installed like any dependency rather than kept in
git, through the folders it names for this (`swagger_ui.static_path`,
`redoc.static_path`). tests/test_docs.py checks that every file a page names
is there.
"""

import openapi_ui_bundles.redoc
import openapi_ui_bundles.swagger_ui
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.middleware import docs_policy

OPENAPI_URL = "/openapi.json"
SWAGGER_UI_URL = "/docs"
REDOC_URL = "/redoc"
# Where Swagger UI sends the browser back after an OAuth2 login ("Authorize").
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
SWAGGER_UI_ASSETS = "/docs/assets"
REDOC_ASSETS = "/redoc/assets"
# The site's own icon, rather than FastAPI's from its website.
FAVICON_URL = "/static/img/favicon.svg"


def add_docs(app: FastAPI) -> None:
    """Serve the docs pages and their files. Call it only when the docs are on:
    without it there is no /docs, /redoc or their files."""
    app.mount(
        SWAGGER_UI_ASSETS,
        StaticFiles(directory=openapi_ui_bundles.swagger_ui.static_path),
        name="swagger-ui",
    )
    app.mount(
        REDOC_ASSETS, StaticFiles(directory=openapi_ui_bundles.redoc.static_path), name="redoc"
    )

    @app.get(SWAGGER_UI_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_UI_ASSETS}/swagger-ui.css",
            swagger_favicon_url=root + FAVICON_URL,
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _with_policy(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=root + FAVICON_URL,
            # Google's fonts would be the one thing still loaded from elsewhere.
            with_google_fonts=False,
        )
        return _with_policy(page)


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under (`fastapi run --root-path`), as
    FastAPI's own docs pages use it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with the docs' Content-Security-Policy, which allows exactly its
    own inline scripts (SecurityHeadersMiddleware keeps a policy a response has)."""
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body))
    return page
