"""Posts in Markdown, shown as sanitised HTML: what renders, and what never does."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers import Account, create_post, page_login, submit

# Each is a post's whole content. None of them may leave a script, an event
# handler, a dangerous URL or an active element in the rendered HTML.
XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    "<a href='javascript:alert(1)'>click</a>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](  javascript:alert(1) )",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    '![x](x" onerror="alert(1))',
    '[x](https://ok.example "title" onmouseover="alert(1)")',
    "<details open ontoggle=alert(1)>",
    "<style>body { display: none }</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example"><button>Go</button></form>',
    "<input autofocus onfocus=alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.example/">',
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "[a]: javascript:alert(1)\n\n[click][a]",
    "<!-- <script>alert(1)</script> -->",
    "<<script>script>alert(1)<</script>/script>",
]
ACTIVE_TAGS = {
    "script",
    "img",
    "svg",
    "iframe",
    "details",
    "style",
    "div",
    "math",
    "object",
    "embed",
    "form",
    "button",
    "input",
    "meta",
    "base",
    "link",
}


class Elements(HTMLParser):
    """Every element and attribute in a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


async def rendered(client: httpx.AsyncClient, account: Account, content: str) -> str:
    post = await create_post(client, account, content=content)
    html = post["content_html"]
    assert isinstance(html, str)
    # The post's page shows the same HTML.
    page = await client.get(f"/posts/{post['id']}")
    assert html in page.text
    return html


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
async def test_the_sanitiser_refuses_every_vector(
    client: httpx.AsyncClient, alice: Account, payload: str
) -> None:
    html = await rendered(client, alice, payload)
    for tag, attributes in elements(html):
        assert tag not in ACTIVE_TAGS, html
        for name, value in attributes:
            assert not name.startswith("on"), html
            assert name not in ("style", "src", "action", "formaction", "xlink:href"), html
            assert "script" not in (value or "").lower(), html
            if name == "href":
                assert urlsplit(value or "").scheme in ("", "http", "https", "mailto"), html


async def test_markdown_renders_with_safe_links(client: httpx.AsyncClient, alice: Account) -> None:
    source = (
        "# A heading\n\nSome *words*, **bold** and `code`.\n\n"
        "- one\n- two\n\n"
        "```python\nprint('hi')\n```\n\n"
        "[a link](https://example.org/page)\n"
    )
    html = await rendered(client, alice, source)
    assert "<h1>A heading</h1>" in html
    assert "<em>words</em>" in html
    assert "<strong>bold</strong>" in html
    assert "<li>one</li>" in html
    assert "<pre><code class=\"language-python\">print('hi')\n</code></pre>" in html
    assert '<a href="https://example.org/page" rel="nofollow ugc noopener">a link</a>' in html


async def test_raw_html_is_shown_as_text(client: httpx.AsyncClient, alice: Account) -> None:
    html = await rendered(client, alice, "Use <b>tags</b> & ampersands")
    assert html == "<p>Use &lt;b&gt;tags&lt;/b&gt; &amp; ampersands</p>\n"


async def test_cards_show_a_plain_text_excerpt(client: httpx.AsyncClient, alice: Account) -> None:
    long = "## Title\n\n" + "Plenty of **words** here. " * 30
    post = await create_post(client, alice, title="Long one", content=long)
    home = (await client.get("/")).text
    assert "Title Plenty of words here." in home
    assert "**" not in home
    assert "…" in home
    edited = await client.patch(
        f"/api/posts/{post['id']}", json={"content": "Now *short*."}, headers=alice.headers
    )
    assert edited.json()["content_html"] == "<p>Now <em>short</em>.</p>\n"
    assert "Now short." in (await client.get("/")).text


async def test_the_preview_button_renders_without_saving(
    browser: httpx.AsyncClient, alice: Account
) -> None:
    await page_login(browser, alice.email)
    form = {"title": "Draft", "content": "Some **strong** words", "preview": "true"}
    shown = await submit(browser, "/posts/new", "/posts/new", form)
    assert shown.status_code == 200
    assert "<h2>Preview</h2>" in shown.text
    assert "Some <strong>strong</strong> words" in shown.text
    # The form keeps what was typed, and nothing was published.
    assert ">Some **strong** words</textarea>" in shown.text
    assert (await browser.get("/api/posts")).json()["posts"] == []
    refused = await submit(
        browser, "/posts/new", "/posts/new", {"title": "", "content": "x", "preview": "true"}
    )
    assert refused.status_code == 422
