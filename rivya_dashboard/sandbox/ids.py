"""Random public identifiers in the formats of choices.py."""

import secrets

from rivya_dashboard.sandbox import choices


def random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def public_id(prefix: str) -> str:
    return prefix + random_string(choices.BASE36, choices.PUBLIC_ID_LENGTH)


def request_id() -> str:
    return choices.REQUEST_ID_PREFIX + random_string(choices.BASE62, choices.REQUEST_ID_LENGTH)
