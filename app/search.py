"""Full-text search over posts: their titles, tags and content, ranked.

Each database does it with its own engine, behind the two functions the rest
of the app calls (`index_post` when a post is saved, `search_posts` to search):

- SQLite: an FTS5 table, `posts_search`, whose rowid is the post's id. The
  porter tokenizer matches "running" to "run", and accents are ignored.
- PostgreSQL: a `tsvector` per post in `posts_search`, weighted A for the
  title, B for the tags and D for the content, under a GIN index.

Both are written in the transaction that saves the post, so a search never
finds a post that was rolled back or misses one that was committed. Deleting
a post deletes its entry (a trigger on SQLite, the foreign key's ON DELETE
CASCADE on PostgreSQL). The tables are made by migration 0013 and are not
SQLModel models: an FTS5 table is a virtual table that only SQLite knows.

What a search costs is bounded, whatever the number of posts: it ranks the
CANDIDATES newest posts that match every word, and pages through them by
(score, id). Both databases score alike: a word in the title first, then in
the tags, then in the content alone; newer first within each. (SQLite's
bm25() and PostgreSQL's ts_rank() weigh more, but differently from each
other, and bm25 reads every post holding the word.) They still differ in
one way: PostgreSQL's English dictionary leaves out words like "the", which
SQLite looks for.

How the newest matches are found differs. FTS5 reads a word's posts in id
order, newest first, and stops after CANDIDATES: the same work for a word in
every post as for a word in a few. A GIN index gives its matches in no order,
so PostgreSQL either sorts every match or walks the posts newest first until
CANDIDATES have matched, whichever its planner expects to be cheaper; for a
word in about one post in 200 both mean ten thousand or more rows at a
million posts. CANDIDATES is small enough that this stays a few milliseconds
(bench/scale.py measures it) and large enough for twenty pages of results.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import Float, Integer, TextClause, text, tuple_
from sqlalchemy.orm import joinedload, selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.markdown import plain_text
from app.models import Post
from app.pagination import PostPage, Rank

# What a search box takes: a few words, not a document.
MAX_QUERY_LENGTH = 200
MAX_WORDS = 8
CANDIDATES = 200
# A word: letters, digits and underscores in any script. Everything else
# (quotes, operators, NUL) only separates words, so no input can be read as
# the search engine's own query syntax.
WORD = re.compile(r"\w+")


def is_search_table(name: str) -> bool:
    """The tables migration 0013 made for search (FTS5 adds some of its own),
    which are no model's: Alembic's autogenerate leaves them alone."""
    return name.startswith("posts_search")


def query_problem(query: str) -> str | None:
    """Why `query` cannot be searched for, or None if it can."""
    if len(query) > MAX_QUERY_LENGTH:
        return f"A search has at most {MAX_QUERY_LENGTH} characters."
    if "\x00" in query:
        return "A search cannot contain a NUL character."
    try:
        query.encode()
    except UnicodeEncodeError:
        return "A search must be text (it holds a lone surrogate)."
    if query.strip() and not words_of(query):
        return "Search for a word: letters or digits (quotes and operators are not read)."
    return None


def words_of(query: str) -> list[str]:
    """The words searched for: at most MAX_WORDS, lower-cased, each with a letter or digit."""
    words: list[str] = []
    for word in WORD.findall(query.lower()):
        if any(character.isalnum() for character in word) and word not in words:
            words.append(word)
    return words[:MAX_WORDS]


async def index_post(session: AsyncSession, post: Post, tags: Sequence[str]) -> None:
    """Write the post's entry in the search index (a new one, or over the old)."""
    values = {"id": post.id, "title": post.title, "tags": " ".join(tags), "content": post.content}
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        statement = text(
            "INSERT INTO posts_search (post_id, document) VALUES (:id,"
            " setweight(to_tsvector('english', :title), 'A')"
            " || setweight(to_tsvector('english', :tags), 'B')"
            " || setweight(to_tsvector('english', :content), 'D'))"
            " ON CONFLICT (post_id) DO UPDATE SET document = excluded.document"
        )
    else:
        statement = text(
            "INSERT OR REPLACE INTO posts_search (rowid, title, tags, content)"
            " VALUES (:id, :title, :tags, :content)"
        )
    # A plain SQL statement, on the session's connection: in its transaction.
    await connection.execute(statement, values)


def _candidates(dialect: str, words: list[str], tag: str | None) -> TextClause:
    """The CANDIDATES newest posts holding every word (and `tag`, if given),
    each with its score: 4 if a word is in the title, plus 2 if one is in the
    tags, plus 1. The tag is checked here, among the candidates, so that the
    newest tagged matches are found however many untagged ones are newer."""
    values = {"candidates": CANDIDATES, "tag": tag}
    if dialect == "postgresql":
        # The newest matches first, then their scores: scored in one step,
        # every match would be scored before the newest were picked.
        # ts_filter keeps the title's words (weight A) or the tags' (B);
        # `any_word` is the words joined by OR. plainto_tsquery and the
        # words (letters and digits only) carry no query syntax of the user's.
        sql = (
            "SELECT post_id,"
            " 4 * CAST(ts_filter(document, '{a}') @@ any_word AS integer)"
            " + 2 * CAST(ts_filter(document, '{b}') @@ any_word AS integer) + 1 AS score"
            " FROM (SELECT post_id, document FROM posts_search"
            " WHERE document @@ plainto_tsquery('english', :words)"
            " AND (CAST(:tag AS VARCHAR) IS NULL OR post_id IN (SELECT post_tags.post_id"
            " FROM post_tags JOIN tags ON tags.id = post_tags.tag_id WHERE tags.name = :tag))"
            " ORDER BY post_id DESC LIMIT :candidates) AS newest,"
            " to_tsquery('english', :any_word) AS any_word"
        )
        values |= {"words": " ".join(words), "any_word": " | ".join(words)}
        return text(sql).bindparams(**values)
    # Each word as a quoted phrase: FTS5 operators in it are plain text.
    # highlight() marks the words found in one column of one row (so the
    # score needs only that row): a column with a word found differs from
    # its text.
    sql = (
        "SELECT rowid AS post_id,"
        " 4 * (highlight(posts_search, 0, '[', ']') != title)"
        " + 2 * (highlight(posts_search, 1, '[', ']') != tags) + 1 AS score"
        " FROM posts_search WHERE posts_search MATCH :words"
        " AND (CAST(:tag AS VARCHAR) IS NULL OR rowid IN (SELECT post_tags.post_id"
        " FROM post_tags JOIN tags ON tags.id = post_tags.tag_id WHERE tags.name = :tag))"
        " ORDER BY rowid DESC LIMIT :candidates"
    )
    values["words"] = " ".join(f'"{word}"' for word in words)
    return text(sql).bindparams(**values)


async def search_posts(
    session: AsyncSession,
    query: str,
    *,
    limit: int,
    after: Rank | None = None,
    tag: str | None = None,
) -> PostPage:
    """Posts matching every word of `query`, best first, `limit` after `after`:
    one statement, plus the page's tags. No words (see `query_problem`): no posts."""
    words = words_of(query)
    if not words:
        return PostPage(posts=[], limit=limit, next=None)
    candidates = (
        _candidates((await session.connection()).dialect.name, words, tag)
        .columns(post_id=Integer, score=Float)
        .subquery("candidates")
    )
    score = candidates.c.score
    statement = select(Post, score).join(candidates, col(Post.id) == candidates.c.post_id)
    if after is not None:
        statement = statement.where(tuple_(score, col(Post.id)) < tuple_(after.score, after.id))
    statement = (
        statement.options(joinedload(Post.author, innerjoin=True))  # type: ignore[arg-type]
        .options(selectinload(Post.tags))  # type: ignore[arg-type]
        .order_by(score.desc(), col(Post.id).desc())
        .limit(limit + 1)
    )
    rows = (await session.exec(statement)).all()
    posts = [post for post, _score in rows]
    if len(rows) <= limit:
        return PostPage(posts=posts, limit=limit, next=None)
    last, last_score = rows[limit - 1]
    assert last.id is not None
    return PostPage(posts=posts[:limit], limit=limit, next=Rank(last_score, last.id))


# --- showing what was found ---------------------------------------------------------

SNIPPET_BEFORE, SNIPPET_LENGTH = 60, 240
# Endings taken off a searched word before marking the words that start with
# it, so that "running" marks "run" and "runs", roughly as the search engines
# stem words (it marks a little more: "notes" marks "nothing" too).
ENDINGS = ("ing", "ed", "es", "s")


@dataclass(frozen=True, slots=True)
class Marked:
    """A result's title and a snippet of its text, escaped, with the words found in <mark>."""

    title: Markup
    snippet: Markup


def _pattern(words: list[str]) -> re.Pattern[str]:
    stems = []
    for word in words:
        for ending in ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                word = word[: -len(ending)]
                break
        stems.append(re.escape(word))
    return re.compile(rf"\b(?:{'|'.join(stems)})\w*", re.IGNORECASE)


def _mark(text: str, pattern: re.Pattern[str]) -> Markup:
    parts, end = [], 0
    for found in pattern.finditer(text):
        parts += [escape(text[end : found.start()]), Markup("<mark>%s</mark>") % found.group()]
        end = found.end()
    parts.append(escape(text[end:]))
    return Markup("").join(parts)


def _snippet(text: str, pattern: re.Pattern[str]) -> str:
    """SNIPPET_LENGTH characters of `text` around its first word found."""
    found = pattern.search(text)
    start = 0 if found is None else max(0, found.start() - SNIPPET_BEFORE)
    if found is not None and start:
        # From the start of a word, and never past the word found.
        start = text.rfind(" ", start, found.start()) + 1 or start
    snippet = text[start : start + SNIPPET_LENGTH]
    return ("…" if start else "") + snippet + ("…" if start + SNIPPET_LENGTH < len(text) else "")


def mark_results(posts: Sequence[Post], query: str) -> dict[int, Marked]:
    """Each post's title and snippet with the searched words marked. Reads
    every post's text: run it in a worker thread."""
    words = words_of(query)
    if not words:
        return {}
    pattern = _pattern(words)
    return {
        post.id: Marked(
            title=_mark(post.title, pattern),
            snippet=_mark(_snippet(plain_text(post.content_html), pattern), pattern),
        )
        for post in posts
        if post.id is not None
    }
