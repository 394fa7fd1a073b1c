"""Usernames that cannot be mistaken for one another.

Two names that look the same are the same name. Each username has a key,
unique in the database, made by:

1. Unicode NFKC normalisation: full-width letters, ligatures and other
   compatibility forms become the plain ones (full-width "newbie" is "newbie");
2. case folding: "NEWBIE" is "newbie", "Stra\u00dfe" (with a sharp s) is "strasse";
3. letters drawn like plain Latin ones (Cyrillic, Greek, and a few Latin
   ones such as the dotless i) read as those
   ("ada" written with a Cyrillic "a", U+0430, is "ada").

Characters nobody can see or type as part of a name are refused outright:
control and format characters (the zero-width space and its kin), unassigned
and private-use code points, and every space but the plain one.
"""

import unicodedata

# Lower-case letters drawn like a plain Latin one, written as escapes because
# they cannot be told apart on screen. A change here changes keys: add a
# migration that recomputes `users.username_key` (as 0008 computed it).
LOOKALIKES = str.maketrans(
    {
        "\u0430": "a",  # cyrillic small letter a
        "\u0441": "c",  # cyrillic small letter es
        "\u0501": "d",  # cyrillic small letter komi de
        "\u0435": "e",  # cyrillic small letter ie
        "\u04bb": "h",  # cyrillic small letter shha
        "\u0456": "i",  # cyrillic small letter byelorussian-ukrainian i
        "\u0458": "j",  # cyrillic small letter je
        "\u043a": "k",  # cyrillic small letter ka
        "\u04cf": "l",  # cyrillic small letter palochka
        "\u043e": "o",  # cyrillic small letter o
        "\u0440": "p",  # cyrillic small letter er
        "\u051b": "q",  # cyrillic small letter qa
        "\u0455": "s",  # cyrillic small letter dze
        "\u0443": "y",  # cyrillic small letter u
        "\u04af": "y",  # cyrillic small letter straight u
        "\u051d": "w",  # cyrillic small letter we
        "\u0445": "x",  # cyrillic small letter ha
        "\u03b1": "a",  # greek small letter alpha
        "\u03b9": "i",  # greek small letter iota
        "\u03f3": "j",  # greek letter yot
        "\u03ba": "k",  # greek small letter kappa
        "\u03bd": "v",  # greek small letter nu
        "\u03bf": "o",  # greek small letter omicron
        "\u03c1": "p",  # greek small letter rho
        "\u03f2": "c",  # greek lunate sigma symbol
        "\u03c5": "u",  # greek small letter upsilon
        "\u03c7": "x",  # greek small letter chi
        "\u0131": "i",  # latin small letter dotless i
        "\u0251": "a",  # latin small letter alpha
    }
)
# Unicode categories no name may contain: Cc control, Cf format (zero-width
# space, joiners, direction marks), Cs surrogates, Co private use, Cn
# unassigned, Zl and Zp line and paragraph separators.
INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Letters that are drawn as nothing: the Hangul fillers and the blank
# Braille pattern.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def username_problem(name: str) -> str | None:
    """Why `name` cannot be a username, or None."""
    for char in name:
        category = unicodedata.category(char)
        if category in INVISIBLE or (category == "Zs" and char != " ") or char in BLANK_LETTERS:
            return "A username cannot contain invisible characters or special spaces."
    if name and unicodedata.category(name[0]).startswith("M"):
        return "A username cannot start with an accent or other combining mark."
    if not any(unicodedata.category(char)[0] in "LN" for char in name):
        return "A username needs at least one letter or digit."
    return None


def normalise_username(name: str) -> str:
    """The name as it is stored and shown: NFKC, surrounding spaces removed."""
    return unicodedata.normalize("NFKC", name).strip()


def username_key(name: str) -> str:
    """What two usernames are compared by: equal keys look alike."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return folded.translate(LOOKALIKES)
