"""JSON routes for keeping an account safe: passwords, resets, verification.

Mail goes out in a background task, once the response is sent (after the
commit): see app/mail.py.
"""

from fastapi import APIRouter, BackgroundTasks, status

from app import accounts
from app.deps import ClientAddress, CurrentUser, LimiterDep, MailerDep, SessionDep, SettingsDep
from app.models import EmailVerification, PasswordChange, PasswordRecovery, PasswordReset

router = APIRouter(prefix="/api", tags=["accounts"])


@router.put("/users/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    data: PasswordChange, user: CurrentUser, session: SessionDep, limiter: LimiterDep
) -> None:
    """Change your password. Every token issued before, this one included,
    stops working: log in again for a new one."""
    await accounts.change_password(session, limiter, user, data.current_password, data.new_password)


@router.post("/password-recovery", status_code=status.HTTP_202_ACCEPTED)
async def recover_password(
    data: PasswordRecovery,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    mailer: MailerDep,
    background: BackgroundTasks,
    address: ClientAddress,
) -> dict[str, str]:
    """Mail a password reset link to this address, if it has an account. The
    answer is the same either way, so it tells nobody who has an account."""
    started = await accounts.start_password_reset(session, limiter, data.email, address=address)
    if started is not None:
        user, token = started
        background.add_task(mailer.send, accounts.reset_mail(user, token, settings))
    return {"detail": "If an account has this address, a reset link is on its way."}


@router.post("/password-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(data: PasswordReset, session: SessionDep, limiter: LimiterDep) -> None:
    """Choose a new password with the token from a reset link. It works once,
    within 60 minutes; every login of the account ends."""
    await accounts.reset_password(session, limiter, data.token, data.new_password)


@router.post("/users/verify-email", status_code=status.HTTP_204_NO_CONTENT)
async def verify_email(data: EmailVerification, session: SessionDep, settings: SettingsDep) -> None:
    """Confirm an email address with the token from its verification link."""
    await accounts.verify_email(session, data.token, settings)


@router.post("/users/me/verification-email", status_code=status.HTTP_202_ACCEPTED)
async def send_verification_email(
    user: CurrentUser,
    settings: SettingsDep,
    limiter: LimiterDep,
    mailer: MailerDep,
    background: BackgroundTasks,
) -> dict[str, str]:
    """Mail the verification link for your address again (a few times an hour)."""
    if user.email_verified:
        return {"detail": f"{user.email} is verified already."}
    await accounts.send_verification_again(limiter, user)
    background.add_task(mailer.send, accounts.verification_mail(user, settings))
    return {"detail": f"A verification link is on its way to {user.email}."}
