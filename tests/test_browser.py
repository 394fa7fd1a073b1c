"""The site in a real browser (Debian's Chromium, driven by Playwright), with
JavaScript on and with it off, against the real server on 127.0.0.1: the
account and writing flows, then the reading and talking ones (a tag, a
search, a like, a comment)."""

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.config import Settings
from tests import pictures
from tests.helpers import PASSWORD, RunningApp, create_post, serve, sign_up
from tests.mailserver import Inbox, wait_for_mail

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AVATAR_URL = re.compile(r".*avatars/[A-Za-z0-9_-]+\.webp.*")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; CI must run the browser tests.")
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    return path


@pytest.fixture
async def server(server_settings: Settings) -> AsyncIterator[RunningApp]:
    """A real uvicorn on 127.0.0.1: the browser connects over the network."""
    async with serve(server_settings) as live:
        yield live


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    files = {
        "avatar": (tmp_path / "me.jpg", pictures.jpeg_rotated_with_gps()),
        "cover": (tmp_path / "cover.png", pictures.png_with_alpha()),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _data) in files.items()}


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def register_and_log_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/register")
    await page.fill("#username", "dora")
    await page.fill("#email", "dora@example.com")
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm_password", PASSWORD)
    await page.click("button:has-text('Register')")
    # Logged in at once, on the home page.
    await expect(page.locator(".flash")).to_contain_text("Welcome, dora!")
    assert page.url == f"{base}/"


async def upload_avatar(page: Page, base: str, avatar: Path, settings: Settings) -> None:
    await page.goto(f"{base}/account")
    await page.set_input_files("#picture", str(avatar))
    await page.click("form.form button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Your account is updated.")
    shown = page.locator(".profile-header img.avatar")
    await expect(shown).to_have_attribute("src", AVATAR_URL)
    # The browser picks the copy that fits 96 CSS pixels from the srcset, and
    # gets a square picture.
    await expect(shown).to_have_attribute("srcset", re.compile(rf" {settings.avatar_size}w$"))
    await expect(shown).to_have_js_property("complete", True)
    width = await shown.evaluate("image => image.naturalWidth")
    assert width > 0
    await expect(shown).to_have_js_property("naturalHeight", width)


async def write_post(page: Page, base: str, cover: Path) -> str:
    await page.goto(f"{base}/posts/new")
    await page.fill("#title", "Seen in a browser")
    await page.fill("#content", "Written through the form.")
    await page.set_input_files("#image", str(cover))
    await page.click("button:has-text('Publish')")
    await expect(page.locator(".flash")).to_contain_text("Your post is published.")
    cover_image = page.locator("article.post img.cover")
    # Loaded, and square like the picture chosen (a srcset makes the natural
    # size the displayed one, so the shape is what is checked).
    await expect(cover_image).to_have_js_property("complete", True)
    width = await cover_image.evaluate("image => image.naturalWidth")
    assert width > 0
    await expect(cover_image).to_have_js_property("naturalHeight", width)
    return page.url


async def more_posts_by_someone_else(server: RunningApp, count: int) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        other = await sign_up(client, "erin")
        for number in range(count):
            await create_post(client, other, title=f"Newer post {number}")


async def edit_delete_log_out(page: Page, base: str, post_url: str, javascript: bool) -> None:
    await page.goto(post_url)
    await page.click("a:has-text('Edit')")
    await page.fill("#title", "Edited in a browser")
    await page.click("button:has-text('Save changes')")
    await expect(page.locator("h1.post-title")).to_have_text("Edited in a browser")
    if javascript:
        page.once("dialog", lambda dialog: dialog.accept())
    await page.click("button:has-text('Delete')")
    await expect(page.locator(".flash")).to_contain_text("Your post is deleted.")
    assert page.url == f"{base}/"
    await page.click("button:has-text('Log out')")
    await expect(page.locator(".flash")).to_contain_text("You are logged out.")
    await expect(page.locator("nav a:has-text('Log in')")).to_be_visible()


async def test_whole_flow_with_javascript(
    browser: Browser, server: RunningApp, server_settings: Settings, images: dict[str, Path]
) -> None:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    base = server.url
    await register_and_log_in(page, base)

    await page.goto(f"{base}/account")
    await page.set_input_files("#picture", str(images["avatar"]))
    # The chosen picture is previewed before it is sent.
    await expect(page.locator("#picture-preview")).to_be_visible()
    await page.click("form.form button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Your account is updated.")
    avatar = page.locator(".profile-header img.avatar")
    await expect(avatar).to_have_attribute(
        "srcset", re.compile(rf" {server_settings.avatar_size}w$")
    )
    await expect(avatar).to_have_js_property("complete", True)
    width = await avatar.evaluate("image => image.naturalWidth")
    assert width > 0
    await expect(avatar).to_have_js_property("naturalHeight", width)
    await screenshot(page, "account")

    post_url = await write_post(page, base, images["cover"])
    await screenshot(page, "post")
    await more_posts_by_someone_else(server, server_settings.posts_per_page)

    await page.goto(f"{base}/")
    await expect(page.locator("article.post-card")).to_have_count(server_settings.posts_per_page)
    await expect(page.locator("text=Seen in a browser")).to_have_count(0)
    await page.click("a:has-text('Load more')")
    # Loaded in place: same page, one more card, and no more "Load more".
    await expect(page.locator("text=Seen in a browser")).to_be_visible()
    await expect(page.locator("article.post-card")).to_have_count(
        server_settings.posts_per_page + 1
    )
    await expect(page.locator("a:has-text('Load more')")).to_have_count(0)
    assert page.url == f"{base}/"
    await screenshot(page, "home")

    await edit_delete_log_out(page, base, post_url, javascript=True)
    await page.goto(f"{base}/posts/999999")
    await expect(page.locator("h1")).to_have_text("Page not found")
    await screenshot(page, "error")
    await context.close()


async def test_whole_flow_without_javascript(
    browser: Browser, server: RunningApp, server_settings: Settings, images: dict[str, Path]
) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    base = server.url
    await register_and_log_in(page, base)
    await upload_avatar(page, base, images["avatar"], server_settings)
    post_url = await write_post(page, base, images["cover"])
    await more_posts_by_someone_else(server, server_settings.posts_per_page)

    await page.goto(f"{base}/")
    await expect(page.locator("text=Seen in a browser")).to_have_count(0)
    await page.click("a:has-text('Load more')")
    # Without JavaScript the link is an ordinary link to the next page.
    assert page.url.startswith(f"{base}/?cursor=")
    await expect(page.locator("text=Seen in a browser")).to_be_visible()
    await expect(page.locator("a:has-text('Load more')")).to_have_count(0)

    await edit_delete_log_out(page, base, post_url, javascript=False)
    await context.close()


async def test_a_forgotten_password_is_reset_by_mail(
    server: RunningApp, browser: Browser, inbox: Inbox
) -> None:
    async with server.client() as client:
        erin = await sign_up(client, "erin")
    new_password = "a brand new passphrase"
    page = await browser.new_page()
    await page.goto(f"{server.url}/login")
    await page.click("text=Forgot your password?")
    await page.fill("#email", erin.email)
    await page.click("button:has-text('Send the link')")
    await expect(page.locator(".flash")).to_contain_text("a link to reset its password")

    # The link in the mail the SMTP server received (its path: the mail names
    # the site's PUBLIC_URL, and this server listens on a port of its own).
    await wait_for_mail(inbox, erin.email, count=2)  # the verification link came first
    link = urlsplit(inbox.last_link(erin.email))
    assert link.path == "/reset-password"
    await page.goto(f"{server.url}{link.path}?{link.query}")
    await page.fill("#new_password", new_password)
    await page.fill("#confirm_password", new_password)
    await page.click("button:has-text('Set the new password')")
    await expect(page.locator(".flash")).to_contain_text("Your password is changed")

    await page.fill("#email", erin.email)
    await page.fill("#password", new_password)
    await page.click("form.form button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Welcome back, erin!")
    await screenshot(page, "password-reset")


# --- reading and talking: tags, search, likes, comments ------------------------------


async def publish_posts(server: RunningApp) -> None:
    """Two posts by erin: one tagged and about kettles, one not."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        erin = await sign_up(client, "erin")
        for title, content, tags in (
            ("Kettles compared", "Which **kettle** boils first?", ["kitchen-tools"]),
            ("Bicycles", "Two wheels and a bell.", []),
        ):
            response = await client.post(
                "/api/posts",
                json={"title": title, "content": content, "tags": tags},
                headers=erin.headers,
            )
            assert response.status_code == 201, response.text
        await sign_up(client, "frank")


async def log_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#email", "frank@example.com")
    await page.fill("#password", PASSWORD)
    await page.click("form.form button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Welcome back, frank!")


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
async def test_tag_search_like_and_comment(
    browser: Browser, server: RunningApp, javascript: bool
) -> None:
    await publish_posts(server)
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1000, "height": 900}
    )
    page = await context.new_page()
    base = server.url
    suffix = "js" if javascript else "no-js"
    await log_in(page, base)

    # The username in the navigation sits level with the links beside it.
    link = await page.locator("nav a:has-text('New post')").bounding_box()
    name = await page.locator("nav .nav-user span").bounding_box()
    assert link is not None
    assert name is not None
    assert abs((link["y"] + link["height"] / 2) - (name["y"] + name["height"] / 2)) <= 1

    # A tag on a card leads to the tag's page.
    await page.click("article.post-card a.tag:has-text('kitchen-tools')")
    assert page.url == f"{base}/tags/kitchen-tools"
    await expect(page.locator("h1")).to_contain_text("Posts tagged kitchen-tools")
    await expect(page.locator("article.post-card")).to_have_count(1)
    await screenshot(page, f"tag-{suffix}")

    # The search box in the navigation; the words found are marked.
    await page.fill("nav input[name=q]", "kettles")
    await page.press("nav input[name=q]", "Enter")
    await expect(page.locator("article.post-card")).to_have_count(1)
    await expect(page.locator("article.post-card h2 mark")).to_have_text("Kettles")
    await expect(page.locator("article.post-card .post-excerpt mark")).to_have_text("kettle")
    await screenshot(page, f"search-{suffix}")
    await page.fill("#q", "submarine")
    await page.click("form.search-form button")
    await expect(page.locator(".empty")).to_have_text("No posts have all of these words.")

    # Like, then unlike, with the plain form.
    await page.goto(f"{base}/")
    await page.click("article.post-card h2 a:has-text('Kettles compared')")
    like = page.locator(".likes button")
    await like.click()
    await expect(like).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#like-count")).to_have_text("1 like")

    # Comment, in Markdown; then remove it.
    await page.fill("#content", "Mine boils in *two* minutes.")
    await page.click("button:has-text('Comment')")
    await expect(page.locator(".flash")).to_contain_text("Your comment is posted.")
    comment = page.locator("li.comment")
    await expect(comment).to_have_count(1)
    await expect(comment.locator("em")).to_have_text("two")
    await expect(page.locator("#comments-title")).to_have_text("1 comment")
    await screenshot(page, f"comment-{suffix}")
    await like.click()
    await expect(like).to_have_attribute("aria-pressed", "false")
    await expect(page.locator("#like-count")).to_have_text("0 likes")
    if javascript:
        page.once("dialog", lambda dialog: dialog.accept())
    await comment.locator("button:has-text('Remove')").click()
    await expect(page.locator(".flash")).to_contain_text("The comment is removed.")
    await expect(page.locator("li.comment")).to_have_count(0)
    await context.close()


async def test_long_words_and_names_never_push_a_phone_screen_sideways(
    browser: Browser, server: RunningApp
) -> None:
    long_name = "averyveryverylongusernamewithoutanybreaks"
    url = "https://example.com/" + "a-very-long-path-segment" * 8
    async with httpx.AsyncClient(base_url=server.url) as client:
        author = await sign_up(client, long_name)
        response = await client.post(
            "/api/posts",
            json={"title": "W" * 100, "content": f"See {url} and `{'x' * 120}`.", "tags": []},
            headers=author.headers,
        )
        assert response.status_code == 201, response.text
        post_id = response.json()["id"]
        comment = await client.post(
            f"/api/posts/{post_id}/comments", json={"content": url}, headers=author.headers
        )
        assert comment.status_code == 201
    page = await browser.new_page(viewport={"width": 375, "height": 800})
    for path in ("/", f"/posts/{post_id}", "/search?q=example"):
        await page.goto(f"{server.url}{path}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, path
    await screenshot(page, "post-375px")
