"""Pages for accounts: register, log in and out, edit your account, change
or reset the password, verify the email address, delete the account.

Mail goes out in a background task once the response is sent (after the
commit): see app/mail.py.
"""

from typing import Annotated, TypeVar

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from app import accounts, users
from app.deps import (
    PAGE_DEPENDENCIES,
    ClientAddress,
    FormFile,
    FormText,
    ImagesDep,
    LimiterDep,
    MailerDep,
    OptionalPageUser,
    PageUser,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from app.errors import Conflict, Invalid, Unprocessable, UploadRejected
from app.models import PasswordChange, PasswordRecovery, PasswordReset, User, UserCreate, UserUpdate
from app.pages.auth import clear_login_cookie, safe_next_path, set_login_cookie
from app.pages.rendering import chosen_file, field_errors, redirect, render
from app.pictures import profile_picture_policy, set_image
from app.ratelimits import RateLimited
from app.storage import forget_files
from app.uploads import store_upload

router = APIRouter(dependencies=PAGE_DEPENDENCIES, include_in_schema=False)

M = TypeVar("M", bound=BaseModel)


def _form(
    request: Request,
    template: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 422,
    *,
    retry_after: int | None = None,
    context: dict[str, object] | None = None,
) -> HTMLResponse:
    response = render(
        request,
        template,
        {"values": values, "errors": errors or {}, **(context or {})},
        status_code=status_code if errors else 200,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _refused(
    request: Request,
    template: str,
    values: dict[str, str],
    exc: Invalid | Conflict | RateLimited,
    context: dict[str, object] | None = None,
) -> HTMLResponse:
    """The form again, with why it was refused beside its field (or above the
    form): a 422, or a 429 with Retry-After when it came too often."""
    field = exc.field if isinstance(exc, Invalid | Conflict) else "form"
    errors = {field: exc.detail}
    if isinstance(exc, RateLimited):
        return _form(
            request, template, values, errors, 429, retry_after=exc.retry_after, context=context
        )
    return _form(request, template, values, errors, context=context)


def _confirmed(
    model: type[M], fields: dict[str, str], password: str, confirm_password: str
) -> tuple[M | None, dict[str, str]]:
    """A form with a new password typed twice: its fields as `model`, or None
    and the messages to show beside the fields."""
    errors: dict[str, str] = {}
    data = None
    try:
        data = model.model_validate(fields)
    except ValidationError as exc:
        errors = field_errors(exc)
    if password != confirm_password:
        errors.setdefault("confirm_password", "The two passwords do not match.")
    return (None if errors else data), errors


def _account_form(
    request: Request, user: User, values: dict[str, str], errors: dict[str, str] | None = None
) -> HTMLResponse:
    return _form(request, "account.html", values, errors, context=_account_context(user))


def _account_context(user: User) -> dict[str, object]:
    return {"has_picture": user.image is not None}


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
    limiter: LimiterDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    address: ClientAddress,
    username: FormText = "",
    email: FormText = "",
    password: FormText = "",
    confirm_password: FormText = "",
) -> HTMLResponse | RedirectResponse:
    # Passwords are never sent back into the form.
    values = {"username": username, "email": email}
    fields = {**values, "password": password}
    data, errors = _confirmed(UserCreate, fields, password, confirm_password)
    if data is None:
        return _form(request, "register.html", values, errors)
    try:
        user = await accounts.register(session, limiter, data, address=address)
    except (RateLimited, Conflict) as exc:
        return _refused(request, "register.html", values, exc)
    background.add_task(mailer.send, accounts.verification_mail(user, settings))
    # Logged in straight away: nobody wants to type what they just typed again.
    message = f"Welcome, {user.username}! We sent a link to {user.email} to confirm it."
    response = redirect(request, "/", message)
    set_login_cookie(response, user, settings)
    return response


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
    limiter: LimiterDep,
    settings: SettingsDep,
    address: ClientAddress,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "/",
) -> HTMLResponse | RedirectResponse:
    next_path = safe_next_path(next)
    values = {"email": email, "next": next_path}
    try:
        user = await accounts.log_in(session, limiter, email, password, address=address)
    except RateLimited as exc:
        return _refused(request, "login.html", values, exc)
    except Unprocessable as exc:
        return _form(request, "login.html", values, {"form": exc.detail}, status_code=422)
    if user is None:
        errors = {"form": "Incorrect email or password."}
        return _form(request, "login.html", values, errors, status_code=400)
    response = redirect(request, next_path, f"Welcome back, {user.username}!")
    set_login_cookie(response, user, settings)
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
    limiter: LimiterDep,
    settings: SettingsDep,
    user: PageUser,
    images: ImagesDep,
    storage: StorageDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    username: FormText = "",
    email: FormText = "",
    current_password: FormText = "",
    picture: FormFile = None,
) -> HTMLResponse | RedirectResponse:
    values = {"username": username, "email": email}
    try:
        data = UserUpdate(username=username, email=email, current_password=current_password)
    except ValidationError as exc:
        return _account_form(request, user, values, field_errors(exc))
    new_email = users.changes_email(user, data)
    try:
        # The password first: it ends the read-only transaction, which
        # nothing may come before.
        await users.check_update_allowed(session, limiter, user, data)
    except (Invalid, RateLimited) as exc:
        return _refused(request, "account.html", values, exc, _account_context(user))
    upload = chosen_file(picture)
    new_picture = None
    if upload:
        # Checked and resized before anything is written, so a bad picture
        # leaves the account as it was; stored before the first write too
        # (app/pictures.py says why).
        policy = profile_picture_policy(settings)
        try:
            new_picture = await store_upload(session, storage, images, upload, policy, user=user.id)
        except UploadRejected as exc:
            return _account_form(request, user, values, {"picture": exc.detail})
    try:
        await users.update_user(session, user, data)
    except Conflict as exc:
        # The form comes back; the picture stored for it goes after the commit.
        forget_files(session, [new_picture])
        return _refused(request, "account.html", values, exc, _account_context(user))
    if new_picture:
        await set_image(session, user, new_picture)
    if new_email:
        background.add_task(mailer.send, accounts.verification_mail(user, settings))
        return redirect(
            request,
            "/account",
            f"Your account is updated. We sent a link to {user.email} to confirm it.",
        )
    return redirect(request, "/account", "Your account is updated.")


@router.post("/account/picture/delete")
async def remove_picture(request: Request, session: SessionDep, user: PageUser) -> RedirectResponse:
    await set_image(session, user, None)
    return redirect(request, "/account", "Your profile picture is removed.")


# --- passwords and logins -------------------------------------------------------------


@router.get("/account/password")
async def password_form(request: Request, _user: PageUser) -> HTMLResponse:
    return _form(request, "password.html", {})


@router.post("/account/password", response_model=None)
async def change_password(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    user: PageUser,
    current_password: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> HTMLResponse | RedirectResponse:
    fields = {"current_password": current_password, "new_password": new_password}
    data, errors = _confirmed(PasswordChange, fields, new_password, confirm_password)
    if data is None:
        return _form(request, "password.html", {}, errors)
    try:
        await accounts.change_password(
            session, limiter, user, data.current_password, data.new_password
        )
    except (Invalid, RateLimited) as exc:
        return _refused(request, "password.html", {}, exc)
    # Every other login has ended; this browser gets a new one.
    response = redirect(
        request, "/account", "Your password is changed. Other devices are logged out."
    )
    set_login_cookie(response, user, settings)
    return response


@router.post("/account/logout-everywhere")
async def logout_everywhere(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser
) -> RedirectResponse:
    await accounts.end_logins(session, user)
    response = redirect(request, "/login", "You are logged out on every device.")
    clear_login_cookie(response, settings)
    return response


@router.post("/account/delete", response_model=None)
async def delete_account(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    user: PageUser,
    password: FormText = "",
) -> HTMLResponse | RedirectResponse:
    try:
        await accounts.delete_account(session, limiter, user, password)
    except (Invalid, RateLimited) as exc:
        values = {"username": user.username, "email": user.email}
        return _refused(request, "account.html", values, exc, _account_context(user))
    response = redirect(request, "/", "Your account, your posts and your pictures are deleted.")
    clear_login_cookie(response, settings)
    return response


# --- a forgotten password --------------------------------------------------------------


@router.get("/forgot-password")
async def forgot_password_form(request: Request) -> HTMLResponse:
    return _form(request, "forgot_password.html", {"email": ""})


@router.post("/forgot-password", response_model=None)
async def forgot_password(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    address: ClientAddress,
    email: FormText = "",
) -> HTMLResponse | RedirectResponse:
    values = {"email": email}
    try:
        data = PasswordRecovery(email=email)
    except ValidationError as exc:
        return _form(request, "forgot_password.html", values, field_errors(exc))
    try:
        started = await accounts.start_password_reset(session, limiter, data.email, address=address)
    except RateLimited as exc:
        return _refused(request, "forgot_password.html", values, exc)
    if started is not None:
        user, token = started
        background.add_task(mailer.send, accounts.reset_mail(user, token, settings))
    # The same answer either way: it tells nobody who has an account.
    return redirect(
        request,
        "/login",
        f"If an account has the address {data.email}, a link to reset its password "
        "is on its way. It works for 60 minutes.",
    )


@router.get("/reset-password")
async def reset_password_form(
    request: Request, token: Annotated[str, Query(max_length=100)] = ""
) -> HTMLResponse:
    return _form(request, "reset_password.html", {"token": token})


@router.post("/reset-password", response_model=None)
async def reset_password(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    token: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> HTMLResponse | RedirectResponse:
    values = {"token": token}
    fields = {"token": token, "new_password": new_password}
    data, errors = _confirmed(PasswordReset, fields, new_password, confirm_password)
    if data is None:
        return _form(request, "reset_password.html", values, errors)
    try:
        await accounts.reset_password(session, limiter, data.token, data.new_password)
    except Invalid as exc:
        return _refused(request, "reset_password.html", values, exc)
    return redirect(request, "/login", "Your password is changed. Log in with the new one.")


# --- verifying the address ---------------------------------------------------------------


@router.get("/verify-email", response_model=None)
async def verify_email(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse | RedirectResponse:
    try:
        user = await accounts.verify_email(session, token, settings)
    except Invalid as exc:
        return render(
            request,
            "message.html",
            {"title": "Link not valid", "message": exc.detail},
            status_code=400,
        )
    return redirect(request, "/", f"Thank you: {user.email} is confirmed.")


@router.post("/account/verification-email")
async def send_verification_email(
    request: Request,
    settings: SettingsDep,
    user: PageUser,
    limiter: LimiterDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> RedirectResponse:
    if user.email_verified:
        return redirect(request, "/account", f"{user.email} is confirmed already.")
    try:
        await accounts.send_verification_again(limiter, user)
    except RateLimited as exc:
        return redirect(request, "/account", exc.detail, category="error")
    background.add_task(mailer.send, accounts.verification_mail(user, settings))
    return redirect(request, "/account", f"A new link is on its way to {user.email}.")
