"""Pages for accounts: register, log in and out, edit your account."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app import users
from app.deps import (
    PAGE_DEPENDENCIES,
    FormFile,
    FormText,
    ImagesDep,
    OptionalPageUser,
    PageUser,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from app.errors import Conflict, Unprocessable, UploadRejected
from app.models import User, UserCreate, UserUpdate
from app.pages.auth import clear_login_cookie, safe_next_path, set_login_cookie
from app.pages.rendering import chosen_file, field_errors, redirect, render
from app.pictures import set_image
from app.policies import policy_of
from app.security import authenticate
from app.storage import forget_files
from app.uploads import store_upload

router = APIRouter(dependencies=PAGE_DEPENDENCIES, include_in_schema=False)


def _form(
    request: Request,
    template: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 422,
    **context: object,
) -> HTMLResponse:
    return render(
        request,
        template,
        {"values": values, "errors": errors or {}, **context},
        status_code=status_code if errors else 200,
    )


def _account_form(
    request: Request, user: User, values: dict[str, str], errors: dict[str, str] | None = None
) -> HTMLResponse:
    return _form(request, "account.html", values, errors, has_picture=user.image is not None)


@router.get("/register", response_model=None)
async def register_form(
    request: Request, user: OptionalPageUser
) -> HTMLResponse | RedirectResponse:
    if user is not None:
        return redirect(request, "/")
    return _form(request, "register.html", {"username": "", "email": ""})


@router.post("/register", response_model=None)
async def register(
    request: Request,
    session: SessionDep,
    username: FormText = "",
    email: FormText = "",
    password: FormText = "",
    confirm_password: FormText = "",
) -> HTMLResponse | RedirectResponse:
    # Passwords are never sent back into the form.
    values = {"username": username, "email": email}
    errors: dict[str, str] = {}
    try:
        data = UserCreate(username=username, email=email, password=password)
    except ValidationError as exc:
        errors = field_errors(exc)
    if password != confirm_password:
        errors.setdefault("confirm_password", "The two passwords do not match.")
    if errors:
        return _form(request, "register.html", values, errors)
    try:
        await users.create_user(session, data)
    except Conflict as exc:
        return _form(request, "register.html", values, {exc.field: exc.detail})
    return redirect(request, "/login", "Your account is ready. You can log in now.")


@router.get("/login", response_model=None)
async def login_form(
    request: Request, user: OptionalPageUser, next: Annotated[str, Query()] = "/"
) -> HTMLResponse | RedirectResponse:
    if user is not None:
        return redirect(request, safe_next_path(next))
    return _form(request, "login.html", {"email": "", "next": safe_next_path(next)})


@router.post("/login", response_model=None)
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "/",
) -> HTMLResponse | RedirectResponse:
    next_path = safe_next_path(next)
    values = {"email": email, "next": next_path}
    try:
        user = await authenticate(session, email, password)
    except Unprocessable as exc:
        return _form(request, "login.html", values, {"form": exc.detail}, status_code=422)
    if user is None or user.id is None:
        errors = {"form": "Incorrect email or password."}
        return _form(request, "login.html", values, errors, status_code=400)
    response = redirect(request, next_path, f"Welcome back, {user.username}!")
    set_login_cookie(response, user.id, settings)
    return response


@router.post("/logout")
async def logout(request: Request, settings: SettingsDep) -> RedirectResponse:
    response = redirect(request, "/", "You are logged out.")
    clear_login_cookie(response, settings)
    return response


@router.get("/account")
async def account_form(request: Request, user: PageUser) -> HTMLResponse:
    return _account_form(request, user, {"username": user.username, "email": user.email})


@router.post("/account", response_model=None)
async def update_account(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PageUser,
    images: ImagesDep,
    storage: StorageDep,
    username: FormText = "",
    email: FormText = "",
    picture: FormFile = None,
) -> HTMLResponse | RedirectResponse:
    values = {"username": username, "email": email}
    try:
        data = UserUpdate(username=username, email=email)
    except ValidationError as exc:
        return _account_form(request, user, values, field_errors(exc))
    upload = chosen_file(picture)
    new_picture = None
    if upload:
        # Checked and resized before anything is written, so a bad picture
        # leaves the account as it was; stored before the first write too
        # (app/pictures.py says why).
        policy = policy_of(User, "image").with_image_size(settings.avatar_size)
        try:
            new_picture = await store_upload(session, storage, images, upload, policy, user=user.id)
        except UploadRejected as exc:
            return _account_form(request, user, values, {"picture": exc.detail})
    try:
        await users.update_user(session, user, data)
    except Conflict as exc:
        # The form comes back; the picture stored for it goes after the commit.
        forget_files(session, [new_picture])
        return _account_form(request, user, values, {exc.field: exc.detail})
    if new_picture:
        await set_image(session, user, new_picture)
    return redirect(request, "/account", "Your account is updated.")


@router.post("/account/picture/delete")
async def remove_picture(request: Request, session: SessionDep, user: PageUser) -> RedirectResponse:
    await set_image(session, user, None)
    return redirect(request, "/account", "Your profile picture is removed.")
