"""Full-text search: by title, content and tag on both databases, a title match
first, the words found marked on the page, and any query a clear answer."""

import httpx
import pytest

from app import posts, search
from app.models import PostCreate, User
from tests.helpers import Account, RunningApp, create_post


async def tagged_post(
    client: httpx.AsyncClient, account: Account, title: str, content: str, tags: list[str]
) -> int:
    response = await client.post(
        "/api/posts",
        json={"title": title, "content": content, "tags": tags},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    post_id = response.json()["id"]
    assert isinstance(post_id, int)
    return post_id


async def found(client: httpx.AsyncClient, query: str, **params: str) -> list[str]:
    response = await client.get("/api/posts", params={"q": query, **params})
    assert response.status_code == 200, response.text
    return [post["title"] for post in response.json()["posts"]]


async def test_search_finds_by_title_content_and_tag_and_ranks_the_title_first(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await tagged_post(client, alice, "Cooking pasta", "Boil the water, then the **kettle**.", [])
    await tagged_post(client, alice, "Tea time", "A kettle and some leaves.", ["drinks"])
    await tagged_post(client, alice, "Kettle reviews", "Which one boils fastest?", ["kitchen"])
    await tagged_post(client, alice, "Gardening", "Nothing here about it.", ["kettle-corn"])
    await create_post(client, alice, title="Unrelated", content="Bicycles and trains.")
    # The title match first; then the tag; then content alone, newest first.
    assert await found(client, "kettle") == [
        "Kettle reviews",
        "Gardening",
        "Tea time",
        "Cooking pasta",
    ]
    assert await found(client, "drinks") == ["Tea time"]
    assert await found(client, "bicycles") == ["Unrelated"]
    # Every word must be there, in any case, and stems find each other.
    assert await found(client, "KETTLE leaves") == ["Tea time"]
    assert await found(client, "boiling") == ["Kettle reviews", "Cooking pasta"]
    assert await found(client, "kettle", tag="drinks") == ["Tea time"]
    assert await found(client, "submarine") == []


async def test_search_pages_with_a_cursor_and_follows_edits_and_deletes(
    client: httpx.AsyncClient, alice: Account
) -> None:
    ids = [await tagged_post(client, alice, f"Note {n}", "common words", []) for n in range(5)]
    titles: list[str] = []
    params = {"q": "common", "limit": "2"}
    while True:
        page = (await client.get("/api/posts", params=params)).json()
        titles += [post["title"] for post in page["posts"]]
        if not page["has_more"]:
            break
        params["cursor"] = page["next_cursor"]
    assert titles == [f"Note {n}" for n in reversed(range(5))]
    edited = await client.patch(
        f"/api/posts/{ids[0]}",
        json={"content": "different now", "tags": ["fresh"]},
        headers=alice.headers,
    )
    assert edited.status_code == 200
    assert "Note 0" not in await found(client, "common")
    assert await found(client, "fresh") == ["Note 0"]
    assert (await client.delete(f"/api/posts/{ids[1]}", headers=alice.headers)).status_code == 204
    assert await found(client, "common") == ["Note 4", "Note 3", "Note 2"]
    # A list's cursor is not a search's.
    listed = (await client.get("/api/posts", params={"limit": 1})).json()
    mixed = await client.get("/api/posts", params={"q": "common", "cursor": listed["next_cursor"]})
    assert mixed.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "AND OR NOT",
        "* ^ : ( ) { } - + NEAR",
        "title:kettle",
        "'; DROP TABLE posts; --",
        "\u00e9\u0301\u200b",
        "x" * 200,
    ],
)
async def test_odd_queries_get_an_answer_never_an_error(
    client: httpx.AsyncClient, alice: Account, query: str
) -> None:
    await create_post(client, alice, title="Something", content="Words")
    response = await client.get("/api/posts", params={"q": query})
    assert response.status_code == 200
    page = await client.get("/search", params={"q": query})
    assert page.status_code == 200


async def test_a_blank_query_is_no_search(client: httpx.AsyncClient, alice: Account) -> None:
    await tagged_post(client, alice, "Tagged", "Words", ["py"])
    for query in ("", "   "):
        assert await found(client, query) == ["Tagged"]
        assert await found(client, query, tag="py") == ["Tagged"]
        page = await client.get("/search", params={"q": query})
        assert page.status_code == 200
        assert "No posts have all of these words." not in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x" * 10_000, "at most 200"),
        ("a\x00b", "NUL"),
        ('"', "Search for a word"),
        ("!!! ???", "Search for a word"),
        ("_ __", "Search for a word"),
    ],
)
async def test_absurd_queries_are_refused_with_a_message(
    client: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await client.get("/api/posts", params={"q": query})
    assert response.status_code == 422
    assert message in response.text
    page = await client.get("/search", params={"q": query})
    assert page.status_code == 422
    assert message in page.text


async def test_the_search_page_marks_the_words_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    filler = "Lorem ipsum dolor sit amet. " * 30
    await tagged_post(
        client, alice, "Async <patterns>", f"{filler}Then async **sessions** appear.", []
    )
    page = await client.get("/search", params={"q": "async session"})
    assert page.status_code == 200
    assert "<mark>Async</mark> &lt;patterns&gt;" in page.text
    # The snippet is where the words are, far past the excerpt's start.
    assert "<mark>async</mark> <mark>sessions</mark> appear." in page.text
    assert 'value="async session"' in page.text
    nothing = await client.get("/search", params={"q": "zebra"})
    assert "No posts have all of these words." in nothing.text


async def test_both_databases_rank_by_where_a_word_is_then_by_date(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await tagged_post(client, alice, "Async async async", "All about it.", [])
    await tagged_post(client, alice, "Kettle", "We boil water in it.", [])
    await tagged_post(client, alice, "Other", "A kettle, boil it: two words together.", [])
    # A control character in a title does not pass for a word found there.
    await tagged_post(client, alice, "Fake\x01", "kettle inside", [])
    await tagged_post(client, alice, "Async", "Newer, with the word once.", [])
    # In the title: newest first, however often the word is there.
    assert await found(client, "async") == ["Async", "Async async async"]
    # A title word and a content word beat two content words side by side.
    assert await found(client, "kettle boil") == ["Kettle", "Other"]
    assert await found(client, "kettle") == ["Kettle", "Fake\x01", "Other"]


async def test_a_tag_finds_its_posts_behind_more_newer_matches_than_are_ranked(
    server: RunningApp, client: httpx.AsyncClient, alice: Account
) -> None:
    await tagged_post(client, alice, "Old and tagged", "A common word.", ["rare"])
    async with server.sessionmaker() as session:
        author = await session.get(User, alice.id)
        assert author is not None
        for n in range(search.CANDIDATES + 1):
            await posts.create_post(session, author, PostCreate(title=f"N{n}", content="common"))
        await session.commit()
    assert await found(client, "common", tag="rare") == ["Old and tagged"]
    assert "Old and tagged" not in await found(client, "common", limit="100")


async def test_the_snippet_starts_before_the_word_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    content = "x" * 100 + ",fastapi,docs and more words after it."
    await tagged_post(client, alice, "Paths", content, [])
    page = await client.get("/search", params={"q": "fastapi"})
    assert "<mark>fastapi</mark>" in page.text
