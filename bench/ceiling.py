"""The ceiling: a minimal Starlette app that answers each benchmarked path with a
static body of the same size and type as the blog's, under the same server.

Whatever the blog spends beyond this is the cost of its own work (database,
ORM, templates, validation). `bench/throughput.py` starts it with
BENCH_CEILING_SPEC pointing at a JSON file: {path: [size, content_type]}.
"""

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_spec: dict[str, list[object]] = json.loads(Path(os.environ["BENCH_CEILING_SPEC"]).read_text())
_bodies = {
    path: (b"x" * int(str(size)), str(content_type)) for path, (size, content_type) in _spec.items()
}


async def static(request: Request) -> Response:
    body, content_type = _bodies.get(request.url.path, (b"", "text/plain"))
    return Response(body, media_type=content_type)


app = Starlette(routes=[Route("/{path:path}", static)])
