"""Pages for accounts: register, log in and out, edit your account."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app import users
from app.config import SettingsDep
from app.db import SessionDep
from app.errors import Conflict
from app.models import UserCreate, UserUpdate
from app.pages.rendering import field_errors, redirect, render
from app.security import (
    OptionalPageUser,
    PageUser,
    clear_login_cookie,
    safe_next_path,
    set_login_cookie,
)

router = APIRouter()

FormText = Annotated[str, Form()]


def _form(
    request: Request,
    template: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    return render(
        request,
        template,
        {"values": values, "errors": errors or {}},
        status_code=status_code if errors else 200,
    )


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
    user = await users.authenticate(session, email, password)
    if user is None or user.id is None:
        values = {"email": email, "next": next_path}
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
    return _form(request, "account.html", {"username": user.username, "email": user.email})


@router.post("/account", response_model=None)
async def update_account(
    request: Request,
    session: SessionDep,
    user: PageUser,
    username: FormText = "",
    email: FormText = "",
) -> HTMLResponse | RedirectResponse:
    values = {"username": username, "email": email}
    try:
        data = UserUpdate(username=username, email=email)
        await users.update_user(session, user, data)
    except ValidationError as exc:
        return _form(request, "account.html", values, field_errors(exc))
    except Conflict as exc:
        return _form(request, "account.html", values, {exc.field: exc.detail})
    return redirect(request, "/account", "Your account is updated.")
