"""JSON routes for comments."""

from fastapi import APIRouter, Request, status

from app import comments, posts
from app.comments import CommentPage
from app.deps import (
    CommentablePost,
    CommentCursor,
    CommentId,
    CurrentUser,
    Limit,
    PostId,
    SessionDep,
)
from app.models import CommentCreate, CommentPublic, CommentsPublic
from app.pagination import COMMENTS, write_cursor

router = APIRouter(prefix="/api", tags=["comments"])


def page_of_comments(request: Request, page: CommentPage) -> CommentsPublic:
    return CommentsPublic(
        comments=[CommentPublic.model_validate(comment) for comment in page.comments],
        limit=page.limit,
        has_more=page.has_more,
        next_cursor=write_cursor(request, page.next, COMMENTS),
    )


@router.get("/posts/{post_id}/comments", response_model=CommentsPublic)
async def list_comments(
    request: Request,
    post_id: PostId,
    session: SessionDep,
    cursor: CommentCursor,
    limit: Limit = 20,
) -> CommentsPublic:
    """A post's comments, oldest first. While `has_more` is true, pass
    `next_cursor` back as `cursor` for the next page."""
    await posts.get_post_row(session, post_id)
    page = await comments.list_comments(session, post_id, limit=limit, after=cursor)
    return page_of_comments(request, page)


@router.post(
    "/posts/{post_id}/comments",
    response_model=CommentPublic,
    status_code=status.HTTP_201_CREATED,
)
async def add_comment(
    post: CommentablePost, data: CommentCreate, session: SessionDep, user: CurrentUser
) -> CommentPublic:
    """Comment on a post (Markdown, 1 to 2,000 characters)."""
    assert post.id is not None
    return CommentPublic.model_validate(await comments.add_comment(session, post.id, user, data))


@router.delete("/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_comment(comment_id: CommentId, session: SessionDep, user: CurrentUser) -> None:
    """Remove a comment: yours, one under your post, or any as an admin."""
    comment, post_author_id = await comments.get_comment(session, comment_id)
    await comments.remove_comment(session, comment, post_author_id, user)
