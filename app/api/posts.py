"""JSON routes for posts."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app import posts
from app.db import SessionDep, release_connection
from app.images import ImagesDep, ImageUpload
from app.models import Post, PostCreate, PostPublic, PostsPublic, PostUpdate
from app.posts import PostPage
from app.security import CurrentUser
from app.storage import StorageDep

router = APIRouter(prefix="/api/posts", tags=["posts"])


@router.get("", response_model=PostsPublic)
async def list_posts(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> PostPage:
    """Everyone's posts, newest first. `has_more` says whether another page follows."""
    # FastAPI validates the page against PostsPublic (reading attributes) and
    # writes the JSON in one pass through pydantic-core.
    return await posts.list_posts(session, skip=skip, limit=limit)


@router.post("", response_model=PostPublic, status_code=status.HTTP_201_CREATED)
async def create_post(data: PostCreate, session: SessionDep, current_user: CurrentUser) -> Post:
    """Publish a post as the logged-in user."""
    return await posts.create_post(session, current_user, data)


@router.get("/{post_id}", response_model=PostPublic)
async def read_post(post_id: int, session: SessionDep) -> Post:
    """One post with its author."""
    return await posts.get_post(session, post_id)


@router.patch("/{post_id}", response_model=PostPublic)
async def update_post(
    post_id: int, data: PostUpdate, session: SessionDep, current_user: CurrentUser
) -> Post:
    """Change some fields of your own post."""
    post = await posts.get_post(session, post_id)
    posts.ensure_author(post, current_user)
    return await posts.update_post(session, post, data)


@router.put("/{post_id}", response_model=PostPublic)
async def replace_post(
    post_id: int, data: PostCreate, session: SessionDep, current_user: CurrentUser
) -> Post:
    """Replace the title and content of your own post."""
    post = await posts.get_post(session, post_id)
    posts.ensure_author(post, current_user)
    return await posts.update_post(session, post, data)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_post(post_id: int, session: SessionDep, current_user: CurrentUser) -> None:
    """Delete your own post."""
    post = await posts.get_post(session, post_id)
    posts.ensure_author(post, current_user)
    await posts.delete_post(session, post)


@router.patch("/{post_id}/image", response_model=PostPublic)
async def set_image(
    post_id: int,
    file: ImageUpload,
    session: SessionDep,
    current_user: CurrentUser,
    images: ImagesDep,
    storage: StorageDep,
) -> Post:
    """Upload a cover image for your post (at most 1600 pixels on its longer side
    once stored); the previous one is deleted."""
    post = await posts.get_post(session, post_id)
    posts.ensure_author(post, current_user)
    await release_connection(session)
    image = await images.post_image(file)
    return await posts.set_image(session, storage, post, image)


@router.delete("/{post_id}/image", response_model=PostPublic)
async def remove_image(post_id: int, session: SessionDep, current_user: CurrentUser) -> Post:
    """Remove your post's cover image."""
    post = await posts.get_post(session, post_id)
    posts.ensure_author(post, current_user)
    return await posts.remove_image(session, post)
