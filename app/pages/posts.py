"""Pages for reading and writing posts."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import posts, users
from app.deps import (
    PAGE_DEPENDENCIES,
    Cursor,
    FormFile,
    FormText,
    Fragment,
    ImagesDep,
    OwnPagePost,
    PageUser,
    PostId,
    SessionDep,
    SettingsDep,
    StorageDep,
    UserId,
)
from app.images import POST_COVER, ProcessedImage
from app.models import Post, PostCreate, User
from app.pages.rendering import chosen_file, field_errors, redirect, render
from app.pagination import write_cursor
from app.pictures import prepare_image, replace_image, store_image
from app.posts import PostPage
from app.uploads import UploadRejected

router = APIRouter(dependencies=PAGE_DEPENDENCIES, include_in_schema=False)


def _post_list(
    request: Request, template: str, page: PostPage, fragment: bool, **context: object
) -> HTMLResponse:
    """A list page, or only its cards and "Load more" link for ?fragment=1."""
    cursor = write_cursor(request, page.next)
    next_url = f"{request.url.path}?{urlencode({'cursor': cursor})}" if cursor else None
    list_context = {"page": page, "next_url": next_url, **context}
    return render(request, "_post_list.html" if fragment else template, list_context)


@router.get("/")
async def home(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor,
    fragment: Fragment = False,
) -> HTMLResponse:
    page = await posts.list_posts(session, limit=settings.posts_per_page, after=cursor)
    return _post_list(request, "home.html", page, fragment)


@router.get("/users/{user_id}/posts")
async def user_posts(
    request: Request,
    user_id: UserId,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor,
    fragment: Fragment = False,
) -> HTMLResponse:
    author = await users.get_user(session, user_id)
    per_page = settings.posts_per_page
    page = await posts.list_posts(session, limit=per_page, after=cursor, author_id=user_id)
    return _post_list(request, "user_posts.html", page, fragment, author=author)


def _post_form(
    request: Request,
    post: Post | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "post_form.html",
        {"post": post, "values": values, "errors": errors or {}},
        status_code=422 if errors else 200,
    )


# Declared before /posts/{post_id} so that "new" is not read as an id.
@router.get("/posts/new")
async def new_post_form(request: Request, _user: PageUser) -> HTMLResponse:
    return _post_form(request, None, {"title": "", "content": ""})


async def _validate(
    session: AsyncSession,
    images: ImagesDep,
    owner: User,
    values: dict[str, str],
    image: UploadFile | None,
) -> tuple[PostCreate | None, ProcessedImage | None, dict[str, str]]:
    """The post's fields and its processed cover image (if a file was chosen), or the
    errors to show beside them. Nothing is written here, so a refused form leaves
    nothing behind."""
    try:
        data = PostCreate.model_validate(values)
    except ValidationError as exc:
        return None, None, field_errors(exc)
    upload = chosen_file(image)
    if upload is None:
        return data, None, {}
    try:
        cover = await prepare_image(session, images, upload, POST_COVER, owner=owner)
    except UploadRejected as exc:
        return None, None, {"image": exc.detail}
    return data, cover, {}


@router.post("/posts/new", response_model=None)
async def create_post(
    request: Request,
    session: SessionDep,
    user: PageUser,
    images: ImagesDep,
    storage: StorageDep,
    title: FormText = "",
    content: FormText = "",
    image: FormFile = None,
) -> HTMLResponse | RedirectResponse:
    values = {"title": title, "content": content}
    data, cover, errors = await _validate(session, images, user, values, image)
    if data is None:
        return _post_form(request, None, values, errors)
    stored = None if cover is None else await store_image(session, storage, cover)
    post = await posts.create_post(session, user, data, image=stored)
    return redirect(request, f"/posts/{post.id}", "Your post is published.")


@router.get("/posts/{post_id}")
async def show_post(
    request: Request,
    post_id: PostId,
    session: SessionDep,
) -> HTMLResponse:
    post = await posts.get_post(session, post_id)
    return render(request, "post.html", {"post": post})


@router.get("/posts/{post_id}/edit")
async def edit_post_form(request: Request, post: OwnPagePost) -> HTMLResponse:
    return _post_form(request, post, {"title": post.title, "content": post.content})


@router.post("/posts/{post_id}/edit", response_model=None)
async def update_post(
    request: Request,
    post: OwnPagePost,
    session: SessionDep,
    images: ImagesDep,
    storage: StorageDep,
    title: FormText = "",
    content: FormText = "",
    image: FormFile = None,
    remove_image: Annotated[bool, Form()] = False,
) -> HTMLResponse | RedirectResponse:
    values = {"title": title, "content": content}
    data, cover, errors = await _validate(session, images, post.author, values, image)
    if data is None:
        return _post_form(request, post, values, errors)
    # The cover is stored before the first write: on SQLite a write holds the
    # database's one write lock until the commit, and an upload to S3 can take
    # seconds.
    if cover or remove_image:
        await replace_image(session, storage, post, cover)
    await posts.update_post(session, post, data)
    return redirect(request, f"/posts/{post.id}", "Your post is updated.")


@router.post("/posts/{post_id}/delete")
async def delete_post(request: Request, post: OwnPagePost, session: SessionDep) -> RedirectResponse:
    await posts.delete_post(session, post)
    return redirect(request, "/", "Your post is deleted.")
