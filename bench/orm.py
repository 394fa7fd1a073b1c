"""What a page of posts costs in SQLAlchemy's ORM, side by side in one process:
`python bench/orm.py`.

Seeds a fresh SQLite database (50 users, 1,000 posts, as bench/throughput.py)
and reads the newest ten posts through a synchronous Session on it, outside
the app, so that only the ORM and SQLite are timed:

- the app's own page statement (`app.posts`): posts with their total, authors
  by `selectinload` (two statements);
- the same posts without their authors (one statement);
- the same posts with their authors by `joinedload` (one statement);
- the page's SQL through SQLAlchemy Core, rows without objects.

The variants take turns for several rounds; it prints the median time per
page and the ratio to the app's statement.

Options: --rounds N (default 7), --pages N per round (default 300).
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import bindparam, create_engine, select
from sqlalchemy.orm import Session, joinedload

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import posts  # noqa: E402
from app.models import Post, User  # noqa: E402
from bench.server import app_environment, migrate  # noqa: E402
from bench.throughput import seed  # noqa: E402

PARAMS = {"skip": 0, "limit": 10, "author_id": None}


def variants(session: Session) -> dict[str, Callable[[], object]]:
    newest = (
        select(Post)
        .order_by(*posts._NEWEST_FIRST)
        .offset(bindparam("skip"))
        .limit(bindparam("limit"))
    )
    joined = newest.options(
        joinedload(Post.author, innerjoin=True).load_only(  # type: ignore[arg-type]
            User.id,  # type: ignore[arg-type]
            User.username,  # type: ignore[arg-type]
            User.image,  # type: ignore[arg-type]
            raiseload=True,
        )
    )
    core = select(Post.__table__).order_by(*posts._NEWEST_FIRST).offset(0).limit(10)  # type: ignore[attr-defined]

    def orm(statement: object) -> Callable[[], object]:
        def page() -> object:
            rows = session.execute(statement, PARAMS).all()  # type: ignore[call-overload]
            session.expunge_all()  # every page builds its objects anew, as a request does
            return rows

        return page

    connection = session.connection()
    return {
        "app: page + selectinload": orm(posts._ALL_POSTS),
        "posts without authors": orm(newest),
        "posts + joinedload": orm(joined),
        "Core rows": lambda: connection.execute(core).all(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pages", type=int, default=300)
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="blog-orm-"))
    try:
        env = app_environment(workdir)
        migrate(env)
        asyncio.run(seed(env["DATABASE_URL"]))
        engine = create_engine(f"sqlite:///{workdir / 'bench.db'}")
        with Session(engine) as session:
            timed = variants(session)
            for page in timed.values():  # warm up: compile, fill caches
                for _ in range(100):
                    page()
            spent: dict[str, list[float]] = {name: [] for name in timed}
            for _round in range(options.rounds):
                for name, page in timed.items():
                    started = time.process_time()
                    for _ in range(options.pages):
                        page()
                    spent[name].append((time.process_time() - started) / options.pages)
        engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    reference = statistics.median(spent["app: page + selectinload"])
    print(f"a page of 10 posts, {options.rounds} rounds of {options.pages} pages (medians)")
    print(f"{'variant':<28}{'µs/page':>10}{'ratio':>8}")
    for name, times in spent.items():
        median = statistics.median(times)
        print(f"{name:<28}{median * 1e6:>10.0f}{median / reference:>8.2f}")


if __name__ == "__main__":
    main()
