"""The passwords every attacker tries first, refused for new passwords.

The list (app/data/common-passwords.txt) holds the top of the published lists
of leaked passwords, as far as they are long enough to pass the length rule.
It is read once, when the module is imported.
"""

from pathlib import Path

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt"


def _load(path: Path) -> frozenset[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().casefold() for line in lines if line.strip() and not line.startswith("#")
    )


COMMON_PASSWORDS = _load(COMMON_PASSWORDS_FILE)


def is_common_password(password: str) -> bool:
    """True for a password on the list, whatever its case and surrounding spaces."""
    return password.strip().casefold() in COMMON_PASSWORDS
