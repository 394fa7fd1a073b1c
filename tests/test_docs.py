"""The API docs (/docs, /redoc) are served whole by this site: no CDN, no
other host in their policy, and nothing of them when DOCS_ENABLED=false."""

import base64
import hashlib
import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Route, async_playwright, expect

from app.config import Settings
from tests.helpers import PASSWORD, add_account, running, serve
from tests.test_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium

DOCS_PAGES = ("/docs", "/redoc")
# What a page loads: scripts, style sheets, its icon.
ASSET_URL = re.compile(r'(?:src|href)="([^"]*)"')
# Swagger UI's start-up code, written into the page.
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
EVERY_DOCS_ROUTE = (
    "/docs",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    "/docs/assets/swagger-ui-bundle.js",
    "/docs/assets/swagger-ui.css",
    "/redoc/assets/redoc.standalone.js",
)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (directive.split() for directive in policy.split(";"))
    return {name: sources for name, *sources in parsed}


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_docs_pages_load_every_file_from_this_site(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    urls = ASSET_URL.findall(page.text)
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = ASSET_TYPES[url[url.rindex(".") :]]
        assert asset.headers["content-type"].startswith(expected), url


@pytest.mark.parametrize("path", [*DOCS_PAGES, "/docs/oauth2-redirect"])
async def test_docs_policy_names_no_other_host_and_no_inline_script(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    policy = response.headers["content-security-policy"]
    assert "//" not in policy
    assert "*" not in policy
    assert "http" not in policy
    sources = directives(policy)
    # Inline scripts only by hash: one injected into the page does not run.
    assert "'unsafe-inline'" not in sources["script-src"]
    assert "'unsafe-eval'" not in sources["script-src"]
    assert sources["default-src"] == ["'self'"]


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
async def test_swagger_ui_scripts_in_the_page_are_allowed_by_their_hash(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    scripts = INLINE_SCRIPT.findall(page.text)
    assert scripts
    expected = {
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in scripts
    }
    script_src = directives(page.headers["content-security-policy"])["script-src"]
    assert {source for source in script_src if source.startswith("'sha256-")} == expected


async def test_docs_disabled_removes_every_docs_route(settings: Settings) -> None:
    async with (
        running(settings.model_copy(update={"docs_enabled": False})) as app,
        app.client() as client,
    ):
        statuses = {path: (await client.get(path)).status_code for path in EVERY_DOCS_ROUTE}
        home = await client.get("/")
    assert statuses == dict.fromkeys(EVERY_DOCS_ROUTE, 404)
    # Nor does any page link to them.
    assert 'href="/docs"' not in home.text


async def test_docs_render_and_authorize_with_no_network_but_this_site(
    settings: Settings,
) -> None:
    """In a real browser that can reach nothing but this server, Swagger UI
    lists the operations and logs in with "Authorize", and ReDoc renders."""
    blocked: list[str] = []
    refused: list[str] = []

    async def only_this_server(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    def note_policy_violations(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    async with serve(settings) as live, async_playwright() as playwright:
        account = await add_account(live, "dora")
        browser = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": 1200, "height": 900})
        await context.route("**/*", only_this_server)
        page = await context.new_page()
        page.on("console", note_policy_violations)

        await page.goto(f"{live.url}/docs")
        await expect(page.get_by_text("/api/posts", exact=True).first).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "docs-offline.png"), full_page=True)

        await page.locator("button.authorize").first.click()
        await page.fill("#oauth_username", account.email)
        await page.fill("#oauth_password", PASSWORD)
        await page.locator(".auth-btn-wrapper button.authorize").click()
        # Swagger UI asked /api/users/token for a token, and has one.
        await expect(page.get_by_role("heading", name="Authorized")).to_be_visible()
        # Swagger UI needed nothing that its policy refuses.
        assert refused == []

        await page.goto(f"{live.url}/redoc")
        await expect(page.locator("h1").first).to_contain_text(live.app.title)
        await page.screenshot(path=str(ARTIFACTS / "redoc-offline.png"))
        await browser.close()

    assert blocked == []
    # ReDoc's menu shows its maker's logo from their CDN: the policy refuses
    # that image (and nothing but images), and the page does without it.
    assert all("img-src" in message for message in refused)
