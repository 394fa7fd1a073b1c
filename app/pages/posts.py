"""Pages for reading and writing posts."""

import asyncio
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import attachments as attachments_service
from app import comments, likes, posts, search, users
from app.attachments import add_attachments, check_attachments
from app.deps import (
    PAGE_DEPENDENCIES,
    CommentablePagePost,
    CommentCursor,
    CommentId,
    Cursor,
    CursorText,
    FormFile,
    FormFiles,
    FormText,
    Fragment,
    ImagesDep,
    OptionalPageUser,
    OwnPagePost,
    PagePublisher,
    PageUser,
    PostId,
    RemovablePagePost,
    SessionDep,
    SettingsDep,
    StorageDep,
    TagName,
    UserId,
)
from app.errors import UploadRejected
from app.markdown import to_html
from app.models import CommentCreate, Post, PostCreate, User
from app.pages.rendering import chosen_file, field_errors, redirect, render
from app.pagination import COMMENTS, Position, PostPage, read_rank, write_cursor
from app.pictures import set_image
from app.policies import policy_of
from app.storage import StoredFile
from app.uploads import AcceptedFile, accept_upload, store_accepted

router = APIRouter(dependencies=PAGE_DEPENDENCIES, include_in_schema=False)


def _post_list(
    request: Request,
    template: str,
    page: PostPage,
    fragment: bool,
    params: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    """A list page, or only its cards and "Load more" link for ?fragment=1.
    `params` go into the next page's URL with its cursor."""
    cursor = write_cursor(request, page.next)
    next_url = None
    if cursor:
        next_url = f"{request.url.path}?{urlencode({**(params or {}), 'cursor': cursor})}"
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


@router.get("/tags/{tag}")
async def tag_posts(
    request: Request,
    tag: TagName,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor,
    fragment: Fragment = False,
) -> HTMLResponse:
    page = await posts.list_posts(session, limit=settings.posts_per_page, after=cursor, tag=tag)
    return _post_list(request, "tag_posts.html", page, fragment, tag=tag)


@router.get("/search")
async def search_posts(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query()] = "",
    cursor: CursorText = None,
    fragment: Fragment = False,
) -> HTMLResponse:
    """Posts matching every word of `q`, best first, with the words marked."""
    problem = search.query_problem(q)
    per_page = settings.posts_per_page
    if problem or not q.strip():
        page = PostPage(posts=[], limit=per_page, next=None)
    else:
        after = read_rank(request, cursor)
        page = await search.search_posts(session, q, limit=per_page, after=after)
    marks = await asyncio.to_thread(search.mark_results, page.posts, q) if page.posts else {}
    response = _post_list(
        request,
        "search.html",
        page,
        fragment,
        {"q": q},
        q=q if problem is None else "",
        error=problem,
        marks=marks,
        max_length=search.MAX_QUERY_LENGTH,
        empty_text="No posts have all of these words.",
    )
    if problem:
        response.status_code = 422
    return response


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
    preview_html: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "post_form.html",
        {
            "post": post,
            "values": values,
            "errors": errors or {},
            "max_attachments": policy_of(Post, "attachments").max_files,
            "preview_html": preview_html,
        },
        status_code=422 if errors else 200,
    )


async def _preview(request: Request, post: Post | None, values: dict[str, str]) -> HTMLResponse:
    """The form again, with the content rendered as it would be published:
    a preview that needs no JavaScript. Nothing is saved."""
    try:
        data = PostCreate.model_validate(values)
    except ValidationError as exc:
        return _post_form(request, post, values, field_errors(exc))
    html = await asyncio.to_thread(to_html, data.content)
    return _post_form(request, post, values, preview_html=html)


# Declared before /posts/{post_id} so that "new" is not read as an id.
@router.get("/posts/new")
async def new_post_form(request: Request, _user: PagePublisher) -> HTMLResponse:
    return _post_form(request, None, {"title": "", "content": "", "tags": ""})


@dataclass
class CheckedForm:
    """A post form's fields, its processed cover and its checked attachments,
    or the errors to show beside them."""

    data: PostCreate | None = None
    cover: AcceptedFile | None = None
    attachments: list[AcceptedFile] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


async def _check(
    session: AsyncSession,
    images: ImagesDep,
    post: Post | None,
    owner: User,
    values: dict[str, str],
    image: UploadFile | None,
    files: list[UploadFile],
) -> CheckedForm:
    """Everything the form sent, checked before anything is written, so that a
    refused form leaves nothing behind."""
    try:
        data = PostCreate.model_validate(values)
    except ValidationError as exc:
        return CheckedForm(errors=field_errors(exc))
    checked = CheckedForm(data=data)
    upload = chosen_file(image)
    try:
        if upload is not None:
            policy = policy_of(Post, "image")
            checked.cover = await accept_upload(session, images, upload, policy, user=owner.id)
    except UploadRejected as exc:
        return CheckedForm(errors={"image": exc.detail})
    chosen = [file for file in map(chosen_file, files) if file is not None]
    try:
        checked.attachments = await check_attachments(session, images, post, chosen, owner=owner)
    except UploadRejected as exc:
        return CheckedForm(errors={"attachments": exc.detail})
    return checked


async def _store_attachments(
    session: AsyncSession, storage: StorageDep, checked: CheckedForm
) -> list[StoredFile]:
    return [await store_accepted(session, storage, upload) for upload in checked.attachments]


@router.post("/posts/new", response_model=None)
async def create_post(
    request: Request,
    session: SessionDep,
    user: PagePublisher,
    images: ImagesDep,
    storage: StorageDep,
    title: FormText = "",
    content: FormText = "",
    tags: FormText = "",
    image: FormFile = None,
    attachments: FormFiles = None,
    preview: Annotated[bool, Form()] = False,
) -> HTMLResponse | RedirectResponse:
    values = {"title": title, "content": content, "tags": tags}
    if preview:
        return await _preview(request, None, values)
    checked = await _check(session, images, None, user, values, image, attachments or [])
    if checked.data is None:
        return _post_form(request, None, values, checked.errors)
    # Files are stored before the first write (app/pictures.py says why).
    cover = None if checked.cover is None else await store_accepted(session, storage, checked.cover)
    files = await _store_attachments(session, storage, checked)
    post = await posts.create_post(session, user, checked.data, image=cover)
    await add_attachments(session, post, files)
    return redirect(request, f"/posts/{post.id}", "Your post is published.")


async def _post_page(
    request: Request,
    session: AsyncSession,
    post: Post,
    user: User | None,
    cursor: Position | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """A post with a page of its comments (from `cursor`) and the comment form."""
    liked = await likes.likes_post(session, user, post)
    assert post.id is not None
    page = await comments.list_comments(session, post.id, limit=comments.PER_PAGE, after=cursor)
    next_cursor = write_cursor(request, page.next, COMMENTS)
    more_url = None
    if next_cursor:
        more_url = f"/posts/{post.id}?{urlencode({'cursor': next_cursor})}#comments"
    context = {
        "post": post,
        "liked": liked,
        "may_delete": posts.may_delete(post, user),
        "comments": page,
        # Which comments this reader may remove: their own, all under their
        # post, any for an admin (the rule is comments.may_remove).
        "removable": {
            comment.id
            for comment in page.comments
            if comments.may_remove(comment, post.user_id, user)
        },
        "more_comments_url": more_url,
        # A later page of comments links back to the first.
        "first_comments_url": None if cursor is None else f"/posts/{post.id}#comments",
        "values": values or {},
        "errors": errors or {},
    }
    return render(request, "post.html", context, status_code=422 if errors else 200)


@router.get("/posts/{post_id}")
async def show_post(
    request: Request,
    post_id: PostId,
    session: SessionDep,
    user: OptionalPageUser,
    cursor: CommentCursor,
) -> HTMLResponse:
    """The post, and its comments from `?cursor=` (oldest first)."""
    post = await posts.get_post(session, post_id)
    return await _post_page(request, session, post, user, cursor)


@router.post("/posts/{post_id}/comments", response_model=None)
async def add_comment(
    request: Request,
    post: CommentablePagePost,
    session: SessionDep,
    user: PageUser,
    content: FormText = "",
) -> HTMLResponse | RedirectResponse:
    assert post.id is not None
    post_id = post.id
    try:
        data = CommentCreate.model_validate({"content": content})
    except ValidationError as exc:
        values = {"content": content}
        return await _post_page(request, session, post, user, None, values, field_errors(exc))
    comment = await comments.add_comment(session, post_id, user, data)
    # The page of comments that starts with the new one: with more than a
    # page of them, the post's first page would not show it.
    assert comment.id is not None
    cursor = write_cursor(request, Position(comment.created_at, comment.id - 1), COMMENTS)
    query = f"?{urlencode({'cursor': cursor})}" if post.comment_count >= comments.PER_PAGE else ""
    return redirect(
        request, f"/posts/{post_id}{query}#comment-{comment.id}", "Your comment is posted."
    )


@router.post("/comments/{comment_id}/delete")
async def remove_comment(
    request: Request, comment_id: CommentId, session: SessionDep, user: PageUser
) -> RedirectResponse:
    comment, post_author_id = await comments.get_comment(session, comment_id)
    await comments.remove_comment(session, comment, post_author_id, user)
    return redirect(request, f"/posts/{comment.post_id}#comments", "The comment is removed.")


@router.post("/posts/{post_id}/like")
async def toggle_like(
    request: Request, post_id: PostId, session: SessionDep, user: PageUser
) -> RedirectResponse:
    """The like button: a plain form, so it works without JavaScript."""
    post = await posts.get_post_row(session, post_id)
    await likes.toggle(session, post, user)
    return redirect(request, f"/posts/{post.id}")


@router.get("/posts/{post_id}/edit")
async def edit_post_form(request: Request, post: OwnPagePost) -> HTMLResponse:
    values = {"title": post.title, "content": post.content, "tags": ", ".join(post.tag_names)}
    return _post_form(request, post, values)


@router.post("/posts/{post_id}/edit", response_model=None)
async def update_post(
    request: Request,
    post: OwnPagePost,
    session: SessionDep,
    images: ImagesDep,
    storage: StorageDep,
    title: FormText = "",
    content: FormText = "",
    tags: FormText = "",
    image: FormFile = None,
    attachments: FormFiles = None,
    remove_image: Annotated[bool, Form()] = False,
    preview: Annotated[bool, Form()] = False,
) -> HTMLResponse | RedirectResponse:
    values = {"title": title, "content": content, "tags": tags}
    if preview:
        return await _preview(request, post, values)
    checked = await _check(session, images, post, post.author, values, image, attachments or [])
    if checked.data is None:
        return _post_form(request, post, values, checked.errors)
    # Files are stored before the first write (app/pictures.py says why).
    cover = None if checked.cover is None else await store_accepted(session, storage, checked.cover)
    files = await _store_attachments(session, storage, checked)
    # The text first: it renders the Markdown, which needs no write lock held.
    await posts.update_post(session, post, checked.data)
    if cover or remove_image:
        await set_image(session, post, cover)
    await add_attachments(session, post, files)
    return redirect(request, f"/posts/{post.id}", "Your post is updated.")


@router.post("/posts/{post_id}/attachments/{attachment_id}/delete")
async def remove_attachment(
    request: Request, post: OwnPagePost, attachment_id: str, session: SessionDep
) -> RedirectResponse:
    await attachments_service.remove_attachment(session, post, attachment_id)
    return redirect(request, f"/posts/{post.id}/edit", "The attachment is removed.")


@router.post("/posts/{post_id}/delete")
async def delete_post(
    request: Request, post: RemovablePagePost, session: SessionDep, user: PageUser
) -> RedirectResponse:
    await posts.delete_post(session, post)
    if post.user_id == user.id:
        return redirect(request, "/", "Your post is deleted.")
    return redirect(request, "/", f"You deleted {post.author.username}'s post as an admin.")
