"""Users of one devstack site, loaded from a Reva-style ``users.demo.json``.

The file format is the one of Reva's JSON user and auth managers
(cs3org/reva pkg/user/manager/json/json.go, pkg/auth/manager/json/json.go):
a list of objects with ``id`` {``opaque_id``, ``idp``, ``type``},
``username``, ``secret`` (the password), ``mail``, ``display_name``,
``groups``, ``uid_number``, ``gid_number``.

One difference, so that two sites have distinguishable users: when
``id.idp`` is omitted or empty, the user's idp is the site's domain. An
explicit ``idp`` is kept as written. ``type`` defaults to 1
(USER_TYPE_PRIMARY).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cs3.identity.user.v1beta1 import resources_pb2 as user_res

from .errors import InvalidArgument, NotFound, Unauthenticated

DEMO_USERS_FILE = "users.demo.json"


@dataclass(frozen=True)
class Account:
    """One user entry: the public ``user`` message plus its password."""

    user: user_res.User
    secret: str


def _account_from_entry(entry: dict, domain: str) -> Account:
    raw_id = entry.get("id") or {}
    opaque_id = raw_id.get("opaque_id") or entry.get("username")
    if not opaque_id or not entry.get("username"):
        raise InvalidArgument(f"user entry needs username and id.opaque_id: {entry!r}")
    user = user_res.User(
        id=user_res.UserId(
            idp=raw_id.get("idp") or domain,
            opaque_id=opaque_id,
            type=int(raw_id.get("type") or user_res.USER_TYPE_PRIMARY),
        ),
        username=entry["username"],
        mail=entry.get("mail", ""),
        mail_verified=bool(entry.get("mail_verified", False)),
        display_name=entry.get("display_name", ""),
        groups=list(entry.get("groups", [])),
        uid_number=int(entry.get("uid_number", 0)),
        gid_number=int(entry.get("gid_number", 0)),
    )
    return Account(user=user, secret=str(entry.get("secret", "")))


def load_demo_text() -> str:
    """Return the text of the demo users file shipped with the package."""
    return resources.files(__package__).joinpath(DEMO_USERS_FILE).read_text("utf-8")


class UserDirectory:
    """Lookup, password check and search over the users of one site.

    Args:
        domain: the site's domain, used as ``idp`` where the file has none.
        users_file: path of a users JSON file; None means the demo users
            shipped in ``cs3collab/devstack/users.demo.json``.
    """

    def __init__(self, domain: str, users_file: Path | str | None = None) -> None:
        text = Path(users_file).read_text("utf-8") if users_file else load_demo_text()
        entries = json.loads(text)
        if not isinstance(entries, list):
            raise InvalidArgument("users file must hold a JSON list")
        self.domain = domain
        self._accounts = [_account_from_entry(e, domain) for e in entries]
        self._by_name = {a.user.username: a for a in self._accounts}
        self._by_id = {(a.user.id.idp, a.user.id.opaque_id): a for a in self._accounts}

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts)

    def authenticate(self, username: str, secret: str) -> user_res.User:
        """Check a password; Reva's json auth manager answers both an unknown
        user and a wrong password with InvalidCredentials."""
        account = self._by_name.get(username)
        if account is None or not secret or account.secret != secret:
            raise Unauthenticated(f"invalid credentials for {username!r}")
        return self._copy(account.user)

    def get(self, user_id: user_res.UserId) -> user_res.User:
        """Find a user by id; an empty idp matches this site's users."""
        account = self._by_id.get((user_id.idp or self.domain, user_id.opaque_id))
        if account is None:
            raise NotFound(f"user not found: {user_id.idp}/{user_id.opaque_id}")
        return self._copy(account.user)

    def get_by_username(self, username: str) -> user_res.User:
        account = self._by_name.get(username)
        if account is None:
            raise NotFound(f"user not found: {username}")
        return self._copy(account.user)

    def find(self, query: str, user_type: int | None = None, skip_groups: bool = False) -> list[user_res.User]:
        """Substring search over username, display name, mail and opaque id,
        case-insensitive, sorted by username (Reva's json user manager and
        userprovider); ``user_type`` is the optional TYPE_USERTYPE filter."""
        q = query.lower()
        found = []
        for account in self._accounts:
            u = account.user
            fields = (u.username, u.display_name, u.mail, u.id.opaque_id)
            if not any(q in f.lower() for f in fields):
                continue
            if user_type is not None and u.id.type != user_type:
                continue
            copy = self._copy(u)
            if skip_groups:
                del copy.groups[:]
            found.append(copy)
        return sorted(found, key=lambda u: u.username)

    @staticmethod
    def _copy(user: user_res.User) -> user_res.User:
        out = user_res.User()
        out.CopyFrom(user)
        return out
