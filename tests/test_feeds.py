"""What machines read: the Atom feed, the sitemap, and a post's link-preview tags."""

import calendar
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import feedparser
import httpx
import pytest
from PIL import Image
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Post
from tests import pictures
from tests.helpers import Account, RunningApp

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SITE = "http://testserver"


async def publish(
    client: httpx.AsyncClient,
    account: Account,
    title: str = "Hello",
    content: str = "World",
    tags: Sequence[str] = (),
) -> dict[str, object]:
    response = await client.post(
        "/api/posts",
        json={"title": title, "content": content, "tags": list(tags)},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    post: dict[str, object] = response.json()
    return post


def parse_xml(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    # The app's own answer, parsed to check it: no untrusted XML here.
    return ET.fromstring(response.content)  # noqa: S314


def read_feed(response: httpx.Response) -> feedparser.FeedParserDict:
    """The feed as a feed reader sees it; bozo: it was not well-formed."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


class HeadTags(HTMLParser):
    """A page's <meta> tags ({property or name: content}) and <link> tags (their attributes)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and ("property" in values or "name" in values):
            self.meta[values.get("property") or values["name"]] = values.get("content", "")
        if tag == "link":
            self.links.append(values)

    def link(self, rel: str) -> dict[str, str]:
        (found,) = [link for link in self.links if link.get("rel") == rel]
        return found


# --- the Atom feed -----------------------------------------------------------------


async def test_feed_lists_the_newest_20_posts_newest_first(
    client: httpx.AsyncClient, alice: Account
) -> None:
    titles = [str((await publish(client, alice, f"Post {n}"))["title"]) for n in range(23)]

    feed = read_feed(await client.get("/feed.xml"))

    assert [entry.title for entry in feed.entries] == titles[::-1][:20]
    assert feed.feed.title == "Blog"
    assert feed.feed.id == f"{SITE}/"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": f"{SITE}/feed.xml", "alternate": f"{SITE}/"}


async def test_feed_has_every_element_rfc_4287_requires(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await publish(client, alice, "First")
    await publish(client, alice, "Second")

    feed = parse_xml(await client.get("/feed.xml"))

    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert feed.findtext(f"{ATOM}{name}"), name
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry in entries:
        # No author at the feed's level, so every entry must name one.
        for name in ("id", "title", "updated", "published", f"author/{ATOM}name"):
            assert entry.findtext(f"{ATOM}{name}"), name
        (link,) = entry.findall(f"{ATOM}link[@rel='alternate']")
        assert link.get("href") == entry.findtext(f"{ATOM}id")
        assert entry.find(f"{ATOM}content[@type='html']") is not None
    ids = [entry.findtext(f"{ATOM}id") for entry in entries]
    assert len(set(ids)) == 2


async def test_feed_entries_carry_the_post_and_open_it(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await publish(
        client, alice, "Async tips", "Use **await**.\n\nSecond paragraph.", ["python", "async-io"]
    )

    (entry,) = read_feed(await client.get("/feed.xml")).entries

    assert entry.id == entry.link == f"{SITE}/posts/{post['id']}"
    assert entry.author == "alice"
    assert sorted(tag.term for tag in entry.tags) == ["async-io", "python"]
    assert entry.summary == "Use await. Second paragraph."
    assert "<strong>await</strong>" in entry.content[0].value
    published = datetime.fromisoformat(str(post["date_posted"])).replace(microsecond=0)
    assert calendar.timegm(entry.published_parsed) == published.timestamp()
    page = await client.get(entry.link)
    assert page.status_code == 200
    assert "Async tips" in page.text


async def test_feed_shows_markup_in_a_title_as_text(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await publish(client, alice, '<script>&"', "<b>bold</b> & <script>alert(1)</script>")

    response = await client.get("/feed.xml")

    (entry,) = read_feed(response).entries
    assert entry.title == '<script>&"'
    (element,) = parse_xml(response).findall(f"{ATOM}entry")
    assert element.findtext(f"{ATOM}title") == '<script>&"'
    assert b"<script>" not in response.content
    # The content is the post's HTML as the site shows it: sanitised.
    assert element.findtext(f"{ATOM}content") == post["content_html"]


async def test_a_control_character_in_a_title_does_not_break_the_feed(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await publish(client, alice, "Bell\x07 and tab\tinside", "Form\x0cfeed")

    (entry,) = read_feed(await client.get("/feed.xml")).entries

    assert entry.title == "Bell and tab\tinside"


async def test_an_empty_feed_is_valid_atom(client: httpx.AsyncClient) -> None:
    first = await client.get("/feed.xml")
    feed = read_feed(first)

    assert feed.entries == []
    assert feed.feed.updated_parsed[:6] == (1970, 1, 1, 0, 0, 0)
    assert (await client.get("/feed.xml")).content == first.content


async def test_feed_updated_is_when_a_post_last_changed(
    client: httpx.AsyncClient, alice: Account
) -> None:
    old = await publish(client, alice, "Old")
    await publish(client, alice, "New")
    edited = await client.patch(
        f"/api/posts/{old['id']}", json={"title": "Old, edited"}, headers=alice.headers
    )
    assert edited.status_code == 200, edited.text

    feed = read_feed(await client.get("/feed.xml"))

    assert [entry.title for entry in feed.entries] == ["New", "Old, edited"]
    assert feed.feed.updated == feed.entries[1].updated
    assert feed.entries[1].updated > feed.entries[1].published


# --- the sitemap -------------------------------------------------------------------


def locations(element: ET.Element) -> list[str]:
    """Where a sitemap index's sitemaps are, or a sitemap's pages."""
    return [loc.text or "" for loc in element.iter(f"{SITEMAP}loc")]


async def test_sitemap_index_leads_to_every_post(client: httpx.AsyncClient, alice: Account) -> None:
    posts = [await publish(client, alice, f"Post {n}") for n in range(3)]

    response = await client.get("/sitemap.xml")
    index = parse_xml(response)

    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert index.tag == f"{SITEMAP}sitemapindex"
    sitemaps = locations(index)
    assert sitemaps == [f"{SITE}/sitemaps/pages.xml", f"{SITE}/sitemaps/posts-0.xml"]
    urls: dict[str, str | None] = {}
    for location in sitemaps:
        urlset = parse_xml(await client.get(location))
        assert urlset.tag == f"{SITEMAP}urlset"
        for url in urlset.findall(f"{SITEMAP}url"):
            urls[url.findtext(f"{SITEMAP}loc") or ""] = url.findtext(f"{SITEMAP}lastmod")
    assert set(urls) == {f"{SITE}/", *(f"{SITE}/posts/{post['id']}" for post in posts)}
    for post in posts:
        assert urls[f"{SITE}/posts/{post['id']}"]
    for page in urls:
        assert (await client.get(page)).status_code == 200


async def test_sitemap_has_one_block_per_1000_post_ids(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    async with server.sessionmaker() as session:
        # Ids far apart, as on a site that has had many posts.
        for post_id in (1, 2_500):
            session.add(Post(id=post_id, title=f"Post {post_id}", content="c", user_id=alice.id))
        await session.commit()

    index = parse_xml(await client.get("/sitemap.xml"))

    assert locations(index)[1:] == [f"{SITE}/sitemaps/posts-{n}.xml" for n in range(3)]
    blocks = [parse_xml(await client.get(f"/sitemaps/posts-{n}.xml")) for n in range(3)]
    assert [locations(block) for block in blocks] == [
        [f"{SITE}/posts/1"],
        # Every post of this block was deleted, or never made: an empty list.
        [],
        [f"{SITE}/posts/2500"],
    ]
    assert (await client.get("/sitemaps/posts-3.xml")).status_code == 404


@pytest.mark.parametrize(
    "number",
    ["1", "-1", "x", "01", "1.5", "1e3", "0x1", "%00", "²", "2147484", "9" * 20, "9" * 5000],
)
async def test_a_sitemap_that_does_not_exist_is_404(
    client: httpx.AsyncClient, alice: Account, number: str
) -> None:
    await publish(client, alice)

    response = await client.get(f"/sitemaps/posts-{number}.xml")

    assert response.status_code == 404


async def test_without_posts_there_is_no_post_sitemap(client: httpx.AsyncClient) -> None:
    index = parse_xml(await client.get("/sitemap.xml"))

    assert locations(index) == [f"{SITE}/sitemaps/pages.xml"]
    assert (await client.get("/sitemaps/posts-0.xml")).status_code == 404


# --- link previews and the layout ---------------------------------------------------


async def test_post_page_has_link_preview_tags_without_a_cover(
    client: httpx.AsyncClient, alice: Account
) -> None:
    post = await publish(client, alice, '<script>&"', "A **short** story.")

    tags = HeadTags((await client.get(f"/posts/{post['id']}")).text)

    url = f"{SITE}/posts/{post['id']}"
    assert tags.link("canonical")["href"] == url
    assert tags.meta["og:type"] == "article"
    assert tags.meta["og:title"] == '<script>&"'
    assert tags.meta["og:description"] == "A short story."
    assert tags.meta["og:url"] == url
    assert tags.meta["og:site_name"] == "Blog"
    assert tags.meta["twitter:card"] == "summary"
    assert "og:image" not in tags.meta


@pytest.mark.parametrize(
    ("uploaded", "shared"),
    [
        # Copies 480, 960 and 1600 wide: the smallest at least 1200 wide.
        ((2000, 1000), (1600, 800)),
        # Copies 480 and 1000 wide (never enlarged): the largest.
        ((1000, 500), (1000, 500)),
    ],
)
async def test_post_page_shares_its_cover_at_least_1200_wide_when_it_can(
    client: httpx.AsyncClient,
    alice: Account,
    uploaded: tuple[int, int],
    shared: tuple[int, int],
) -> None:
    post = await publish(client, alice)
    cover = await client.patch(
        f"/api/posts/{post['id']}/image",
        files={"file": ("cover.jpg", pictures.jpeg(*uploaded), "image/jpeg")},
        headers=alice.headers,
    )
    assert cover.status_code == 200, cover.text

    tags = HeadTags((await client.get(f"/posts/{post['id']}")).text)

    assert tags.meta["twitter:card"] == "summary_large_image"
    size = (int(tags.meta["og:image:width"]), int(tags.meta["og:image:height"]))
    assert size == shared
    # Absolute, as other sites need it: this site's media or the bucket's URL.
    assert tags.meta["og:image"].startswith("http")
    image = await client.get(tags.meta["og:image"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == shared


@pytest.mark.parametrize("path", ["/", "/login", "/posts/1"])
async def test_every_page_links_to_the_feed(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    await publish(client, alice)

    tags = HeadTags((await client.get(path)).text)

    alternate = tags.link("alternate")
    assert alternate["type"] == "application/atom+xml"
    assert alternate["title"]
    read_feed(await client.get(alternate["href"]))


@pytest.mark.parametrize(
    "path", ["/feed.xml", "/sitemap.xml", "/sitemaps/pages.xml", "/sitemaps/posts-0.xml"]
)
async def test_head_answers_like_get_on_the_feed_and_sitemaps(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    await publish(client, alice)

    get = await client.get(path)
    head = await client.head(path)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    assert (await client.head("/sitemaps/posts-9.xml")).status_code == 404


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL `engine` sends to the database meanwhile."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_feed_and_sitemaps_cost_the_same_statements_at_any_size(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    """No statement per post: the feed reads one page of posts and its tags,
    the sitemaps a largest id and one block."""
    async with server.sessionmaker() as session:
        session.add_all(Post(title=f"Post {n}", content="c", user_id=alice.id) for n in range(25))
        await session.commit()

    for path, expected in (("/feed.xml", 2), ("/sitemap.xml", 1), ("/sitemaps/posts-0.xml", 2)):
        with recorded_statements(server.engine) as statements:
            response = await client.get(path)
        assert response.status_code == 200
        assert len(statements) == expected, (path, statements)
