"""The storage backends this process knows, by name.

A row's file names the backend that holds it ("local" or "s3"); building its
URL looks the backend up here. The app registers its configured backend at
start-up. This is configuration, not state: every worker registers the same.
"""

from app.storage.base import Storage

_backends: dict[str, Storage] = {}


def register_storage(storage: Storage) -> None:
    _backends[storage.name] = storage


def unregister_storage(storage: Storage) -> None:
    """Forget the backend, if it is still the one registered under its name."""
    if _backends.get(storage.name) is storage:
        del _backends[storage.name]


def get_storage(name: str) -> Storage:
    try:
        return _backends[name]
    except KeyError:
        raise LookupError(f"no storage backend named {name!r} is configured") from None
