"""What the blog tells machines: the Atom feed and the sitemap. (The link
previews of a post's page are in templates/post.html, with the filters of
app/pages/rendering.py.)

- `GET /feed.xml`: the newest posts as an Atom feed (RFC 4287), for feed
  readers. It reads the same page of posts as `/` does (`list_posts`).
- `GET /sitemap.xml`: for search engines (the Sitemaps protocol), an index of
  smaller sitemaps, each costing the same at any table size (see `sitemap`).

The XML is built with ElementTree, never by joining strings: it escapes every
text and attribute, so a title like `<script>` is text in the feed, not markup.
"""

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial

from fastapi import APIRouter, Response

from app import posts
from app.config import Settings
from app.deps import SessionDep, SettingsDep
from app.errors import NotFound
from app.models import MAX_ID, Post
from app.pages.rendering import absolute_url
from app.pagination import EPOCH

router = APIRouter(include_in_schema=False)

SITE_NAME = "Blog"
FEED_SIZE = 20
ATOM_TYPE = "application/atom+xml; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
SITEMAP_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# ElementTree writes attributes in this namespace as `xml:base`.
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

# Posts per sitemap: ids n*1000 to n*1000+999 are in /sitemaps/posts-{n}.xml.
POSTS_PER_SITEMAP = 1_000
LAST_SITEMAP = MAX_ID // POSTS_PER_SITEMAP
# A sitemap's number as this app writes it: digits, no sign, no leading zero,
# and short enough to compare without turning a million digits into an int.
SITEMAP_NUMBER = re.compile(r"0|[1-9][0-9]{0,8}")

# Characters XML 1.0 cannot hold, escaped or not: control characters other
# than tab and newlines, and U+FFFE/U+FFFF. A title may contain one (the
# forms refuse only NUL), and one would make the whole feed unreadable.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _timestamp(value: datetime) -> str:
    """RFC 3339, as Atom and the Sitemaps protocol want it:
    2026-11-21T09:30:00.250000Z. To the microsecond, as stored: a post edited
    within a second of its last change still gets a newer `updated`."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    """A child element of `parent`, with its text and attributes."""
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = NOT_XML.sub("", text)
    return element


async def _xml_response(build: Callable[[], ET.Element], media_type: str) -> Response:
    """Build and write an XML document in a worker thread: for a sitemap of a
    thousand posts, or a feed of long ones, that is milliseconds of CPU, which
    on the event loop would hold up every other request meanwhile."""

    def write() -> bytes:
        document: bytes = ET.tostring(build(), encoding="utf-8", xml_declaration=True)
        return document

    return Response(await asyncio.to_thread(write), media_type=media_type)


# --- the Atom feed -----------------------------------------------------------------


def _atom_feed(entries: Sequence[Post], settings: Settings) -> ET.Element:
    home = absolute_url(settings, "/")
    # xml:base: a relative link in a post's HTML resolves against the site.
    feed = ET.Element("feed", {"xmlns": ATOM_NAMESPACE, XML_BASE: home})
    _add(feed, "id", home)
    _add(feed, "title", SITE_NAME)
    # When the newest change was made; with no posts, a fixed time, so that a
    # reader checking the empty feed sees it unchanged.
    updated = max((post.updated_at for post in entries), default=EPOCH)
    _add(feed, "updated", _timestamp(updated))
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{home}feed.xml")
    _add(feed, "link", rel="alternate", type="text/html", href=home)
    _add(feed, "generator", "FastAPI + SQLModel blog")
    for post in entries:
        _add_entry(feed, post, settings)
    return feed


def _add_entry(feed: ET.Element, post: Post, settings: Settings) -> None:
    url = absolute_url(settings, f"/posts/{post.id}")
    entry = _add(feed, "entry")
    # The post's address is its id: stable, and unique to this site.
    _add(entry, "id", url)
    _add(entry, "title", post.title)
    _add(entry, "published", _timestamp(post.date_posted))
    _add(entry, "updated", _timestamp(post.updated_at))
    author = _add(entry, "author")
    _add(author, "name", post.author.username)
    _add(author, "uri", absolute_url(settings, f"/users/{post.user_id}/posts"))
    _add(entry, "link", rel="alternate", type="text/html", href=url)
    for tag in post.tag_names:
        _add(entry, "category", term=tag)
    if post.excerpt:
        _add(entry, "summary", post.excerpt, type="text")
    # The sanitised HTML, escaped once more as the text of the element: a
    # reader unescapes it and shows it as HTML, as type="html" says.
    _add(entry, "content", post.content_html, type="html")


@router.get("/feed.xml")
async def feed(session: SessionDep, settings: SettingsDep) -> Response:
    """The newest posts as an Atom feed, for feed readers."""
    # The first page of the home page's list, with authors and tags loaded.
    page = await posts.list_posts(session, limit=FEED_SIZE)
    return await _xml_response(partial(_atom_feed, page.posts, settings), ATOM_TYPE)


# --- the sitemap ---------------------------------------------------------------------


def _sitemap_index(blocks: int, settings: Settings) -> ET.Element:
    index = ET.Element("sitemapindex", xmlns=SITEMAP_NAMESPACE)
    paths = ["/sitemaps/pages.xml", *(f"/sitemaps/posts-{n}.xml" for n in range(blocks))]
    for path in paths:
        _add(_add(index, "sitemap"), "loc", absolute_url(settings, path))
    return index


def _urlset(pages: Iterable[tuple[str, datetime | None]], settings: Settings) -> ET.Element:
    """A sitemap of `pages`: each path, and when it last changed if known."""
    urlset = ET.Element("urlset", xmlns=SITEMAP_NAMESPACE)
    for path, changed in pages:
        url = _add(urlset, "url")
        _add(url, "loc", absolute_url(settings, path))
        if changed is not None:
            _add(url, "lastmod", _timestamp(changed))
    return urlset


@router.get("/sitemap.xml")
async def sitemap(session: SessionDep, settings: SettingsDep) -> Response:
    """An index of the site's sitemaps: one for the pages that are not posts,
    and one per block of 1,000 post ids.

    A sitemap of every post would grow with the table, and so would the time
    to make it. Instead the index names the blocks that ids up to the largest
    one fall into (one lookup at the end of the primary key), and each
    block's sitemap reads its posts with a range scan of the primary key: no
    request reads more than 1,000 rows, at a thousand posts or at a million,
    so none keeps the event loop busier than a page of posts does. The index
    gains a line per thousand ids; the protocol allows 50,000 lines, enough
    for ids up to 50 million (deleted posts leave their ids unused). A
    block's address never changes, so search engines can keep it; a block
    whose posts were all deleted is an empty sitemap.
    """
    newest = await posts.newest_post_id(session)
    blocks = 0 if newest is None else newest // POSTS_PER_SITEMAP + 1
    return await _xml_response(partial(_sitemap_index, blocks, settings), XML_TYPE)


@router.get("/sitemaps/pages.xml")
async def pages_sitemap(settings: SettingsDep) -> Response:
    """The pages that are not posts: the home page."""
    return await _xml_response(partial(_urlset, [("/", None)], settings), XML_TYPE)


@router.get("/sitemaps/posts-{number}.xml")
async def posts_sitemap(number: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The posts whose ids are in block `number`, with when each last changed."""
    # The number is checked here rather than declared an int: a path that
    # names no sitemap ("-1", "x", a hundred digits) is a 404, like any
    # other address with nothing at it.
    if not SITEMAP_NUMBER.fullmatch(number) or int(number) > LAST_SITEMAP:
        raise NotFound("There is no such sitemap.")
    block = int(number)
    newest = await posts.newest_post_id(session)
    if newest is None or block > newest // POSTS_PER_SITEMAP:
        raise NotFound("There is no such sitemap.")
    first = block * POSTS_PER_SITEMAP
    changes = await posts.post_changes(session, first, first + POSTS_PER_SITEMAP)
    pages = [(f"/posts/{post_id}", updated_at) for post_id, updated_at in changes]
    return await _xml_response(partial(_urlset, pages, settings), XML_TYPE)
