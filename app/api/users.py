"""JSON routes for accounts: sign-up, tokens, profiles."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app import posts, users
from app.api.posts import page_of_posts
from app.config import SettingsDep
from app.db import SessionDep, release_connection
from app.images import ImagesDep, ImageUpload
from app.models import PostsPublic, User, UserCreate, UserPrivate, UserPublic, UserUpdate
from app.pagination import Cursor
from app.params import Limit, UserId
from app.security import CurrentUser, create_access_token
from app.storage import StorageDep

router = APIRouter(prefix="/api/users", tags=["users"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post("", response_model=UserPrivate, status_code=status.HTTP_201_CREATED)
async def register(data: UserCreate, session: SessionDep) -> User:
    """Create an account. The username and email must not be taken already."""
    return await users.create_user(session, data)


@router.post("/token")
async def login_for_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """Exchange an email (in the `username` field) and password for a bearer token."""
    user = await users.authenticate(session, form.username, form.password)
    if user is None or user.id is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect email or password.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(access_token=create_access_token(user.id, settings))


@router.get("/me", response_model=UserPrivate)
async def read_me(current_user: CurrentUser) -> User:
    """The logged-in user, with their email."""
    return current_user


@router.get("/{user_id}", response_model=UserPublic)
async def read_user(user_id: UserId, session: SessionDep) -> User:
    """A user's public profile."""
    return await users.get_user(session, user_id)


@router.patch("/{user_id}", response_model=UserPrivate)
async def update_user(
    user_id: UserId, data: UserUpdate, session: SessionDep, current_user: CurrentUser
) -> User:
    """Change your own username or email."""
    user = await users.get_user(session, user_id)
    users.ensure_self(user, current_user)
    return await users.update_user(session, user, data)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UserId, session: SessionDep, current_user: CurrentUser) -> None:
    """Delete your own account and all of your posts."""
    user = await users.get_user(session, user_id)
    users.ensure_self(user, current_user)
    await users.delete_user(session, user)


@router.patch("/{user_id}/picture", response_model=UserPrivate)
async def set_picture(
    user_id: UserId,
    file: ImageUpload,
    session: SessionDep,
    current_user: CurrentUser,
    images: ImagesDep,
    storage: StorageDep,
) -> User:
    """Upload your profile picture. It is centre-cropped to a square and stored
    without its metadata; the previous picture is deleted."""
    user = await users.get_user(session, user_id)
    users.ensure_self(user, current_user)
    await release_connection(session)
    picture = await images.avatar(file)
    return await users.set_picture(session, storage, user, picture)


@router.delete("/{user_id}/picture", response_model=UserPrivate)
async def remove_picture(user_id: UserId, session: SessionDep, current_user: CurrentUser) -> User:
    """Go back to the default picture."""
    user = await users.get_user(session, user_id)
    users.ensure_self(user, current_user)
    return await users.remove_picture(session, user)


@router.get("/{user_id}/posts", response_model=PostsPublic)
async def read_user_posts(
    request: Request, user_id: UserId, session: SessionDep, cursor: Cursor, limit: Limit = 10
) -> dict[str, object]:
    """A user's posts, newest first, paginated like `GET /api/posts`."""
    await users.get_user(session, user_id)
    page = await posts.list_posts(session, limit=limit, after=cursor, author_id=user_id)
    return page_of_posts(request, page)
