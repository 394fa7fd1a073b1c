"""Posts are written in Markdown (CommonMark) and shown as sanitised HTML.

Two layers, each a well-kept library:

1. markdown-it-py renders CommonMark (plus tables and strikethrough). Raw
   HTML in the source is not passed through (`html=False`): `<script>` in a
   post is shown as text. Images are not parsed (`![alt](url)` shows as a
   link to the picture): the page's Content-Security-Policy refuses other
   sites' pictures anyway, and a post has its cover and attachments.
2. nh3 (the Rust `ammonia` sanitiser) then keeps only the tags and
   attributes listed here, only http, https and mailto links (no
   `javascript:`, `data:` or `vbscript:`), and gives every link
   `rel="nofollow ugc noopener"`. Should the first layer ever let something
   through, the second still removes it.

Rendering is CPU work, so it happens once, when a post is saved, in a worker
thread (`render_post`); pages and the API serve the stored HTML.
"""

import re
from dataclasses import dataclass
from html import unescape

import nh3
from markdown_it import MarkdownIt

EXCERPT_LENGTH = 280

_parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_parser.disable("image")

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    # A fenced block's language, for styling (class="language-python").
    "code": {"class"},
    "ol": {"start"},
}
# (Table alignment would come as a style attribute, which the page's
# Content-Security-Policy does not allow: columns keep the stylesheet's.)
LINK_REL = "nofollow ugc noopener"
URL_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    # Plain text for cards and link previews: no markup, at most EXCERPT_LENGTH characters.
    excerpt: str


def to_html(source: str) -> str:
    """Sanitised HTML for Markdown `source`."""
    return sanitise(_parser.render(source))


def sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def plain_text(html: str) -> str:
    """The text of sanitised HTML, on one line."""
    # nh3 keeps the text escaped for HTML; the excerpt is text (escaped
    # again by the template that shows it).
    text = unescape(nh3.clean(html, tags=set()))
    return re.sub(r"\s+", " ", text).strip()


def excerpt_of(html: str, length: int = EXCERPT_LENGTH) -> str:
    text = plain_text(html)
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    # At a word boundary when there is one nearby.
    if " " in cut[-40:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" .,;:") + "…"


def render_post(source: str) -> Rendered:
    """HTML and excerpt of a post's Markdown: run it in a worker thread."""
    html = to_html(source)
    return Rendered(html=html, excerpt=excerpt_of(html))
