"""JSON routes for accounts: sign-up, tokens, profiles."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app import accounts, pictures, posts, users
from app.api.posts import page_of_posts
from app.deps import (
    ClientAddress,
    CurrentUser,
    Cursor,
    ImagesDep,
    ImageUpload,
    Limit,
    LimiterDep,
    MailerDep,
    OptionalUser,
    OwnAccount,
    SessionDep,
    SettingsDep,
    StorageDep,
    UserId,
)
from app.models import (
    AccountDeletion,
    PostsPublic,
    User,
    UserCreate,
    UserPrivate,
    UserPublic,
    UserUpdate,
)
from app.security import create_access_token
from app.uploads import store_upload

router = APIRouter(prefix="/api/users", tags=["users"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post(
    "",
    response_model=UserPrivate,
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"description": "The username or email is taken"},
        429: {"description": "Too many registrations"},
    },
)
async def register(
    data: UserCreate,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    address: ClientAddress,
) -> User:
    """Create an account. The username and email must not be taken already; a
    link to verify the address is mailed to it."""
    user = await accounts.register(session, limiter, data, address=address)
    background.add_task(mailer.send, accounts.verification_mail(user, settings))
    return user


@router.post(
    "/token",
    response_model=Token,
    responses={
        401: {"description": "Incorrect email or password"},
        429: {"description": "Too many failures"},
    },
)
async def login_for_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    address: ClientAddress,
) -> Token:
    """Exchange an email (in the `username` field) and password for a bearer
    token. Too many failures for one account or from one client: 429."""
    user = await accounts.log_in(session, limiter, form.username, form.password, address=address)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect email or password.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(access_token=create_access_token(user, settings))


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
    user: OwnAccount,
    data: UserUpdate,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> User:
    """Change your own username or email. A new email needs `current_password`,
    and is unverified until you open the link mailed to it."""
    await users.check_update_allowed(session, limiter, user, data)
    new_email = users.changes_email(user, data)
    await users.update_user(session, user, data)
    if new_email:
        background.add_task(mailer.send, accounts.verification_mail(user, settings))
    return user


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user: OwnAccount, data: AccountDeletion, session: SessionDep, limiter: LimiterDep
) -> None:
    """Delete your own account, all of your posts and their files. Send your
    password (JSON `{"password": ...}`) to confirm."""
    await accounts.delete_account(session, limiter, user, data.password)


@router.patch("/{user_id}/picture", response_model=UserPrivate)
async def set_picture(
    user: OwnAccount,
    file: ImageUpload,
    session: SessionDep,
    settings: SettingsDep,
    images: ImagesDep,
    storage: StorageDep,
) -> User:
    """Upload your profile picture. It is centre-cropped to a square and stored
    without its metadata; the previous picture is deleted."""
    policy = pictures.profile_picture_policy(settings)
    picture = await store_upload(session, storage, images, file, policy, user=user.id)
    await pictures.set_image(session, user, picture)
    return user


@router.delete("/{user_id}/picture", response_model=UserPrivate)
async def remove_picture(user: OwnAccount, session: SessionDep) -> User:
    """Go back to the default picture."""
    await pictures.set_image(session, user, None)
    return user


@router.get("/{user_id}/posts", response_model=PostsPublic)
async def read_user_posts(
    request: Request,
    user_id: UserId,
    session: SessionDep,
    asker: OptionalUser,
    cursor: Cursor,
    limit: Limit = 10,
) -> dict[str, object]:
    """A user's posts, newest first, paginated like `GET /api/posts`."""
    await users.get_user(session, user_id)
    page = await posts.list_posts(session, limit=limit, after=cursor, author_id=user_id)
    return await page_of_posts(request, session, page, asker)
