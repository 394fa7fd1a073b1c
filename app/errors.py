"""Errors the rules of the blog raise, each with the HTTP status it maps to.

Services raise these; `main.py` turns them into `{"detail": ...}` for the API
(and the pages turn them into messages), so no service imports HTTP types.
"""


class AppError(Exception):
    status_code = 400
    # Seconds to wait before trying again, sent as Retry-After (a 429 or 503).
    retry_after: int | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    status_code = 404


class Forbidden(AppError):
    status_code = 403


class Unprocessable(AppError):
    status_code = 422


class Invalid(Unprocessable):
    """Refused input; `field` names the form field whose message it is."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class Conflict(AppError):
    """A unique value is taken; `field` says which, so a form can show it there."""

    status_code = 409

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class UploadRejected(AppError):
    """A file its field does not accept; the message says why, in a user's words."""

    status_code = 422


class UploadTooLarge(UploadRejected):
    status_code = 413


def human_size(size: int) -> str:
    """A byte count for messages: "10 MB", "300 KB"."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.0f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"
