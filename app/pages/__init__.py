"""Server-rendered pages: thin routes over the same services as the JSON API."""

from fastapi import APIRouter, Depends

from app.pages import accounts, posts
from app.security import get_page_user, verify_csrf

# On the router, so that no page can forget them: every state-changing request
# must carry a valid CSRF token, and every page knows who is logged in (for the
# navigation). Routes that need a user declare `PageUser`; FastAPI resolves
# get_page_user once per request either way.
router = APIRouter(
    dependencies=[Depends(verify_csrf), Depends(get_page_user)], include_in_schema=False
)
router.include_router(posts.router)
router.include_router(accounts.router)
