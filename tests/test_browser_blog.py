"""The blog's reading and talking flows in a real browser, with JavaScript on
and off: a tag, a search, a like and a comment, as a reader clicks them."""

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.config import Settings
from tests.helpers import PASSWORD, RunningApp, serve, sign_up
from tests.test_browser import CHROMIUM_FLAGS, chromium, screenshot


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
