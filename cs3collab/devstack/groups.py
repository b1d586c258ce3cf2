"""Groups of one devstack site, derived from its users file.

Reva's json group manager (cs3org/reva pkg/group/manager/json/json.go)
reads a separate ``groups.json``; the devstack has no such file: its groups
are the names found in the users' ``groups`` lists (as the json *user*
manager reports them), and a group's members are the users that list it.
So a group share (which ``shares.py`` matches by group name) and the group
API always agree about who belongs to a group.

A group is ``Group{id: {idp: site domain, opaque_id: name, type: REGULAR},
group_name: name, display_name: name, members}``. Lookups follow the json
manager: ``get`` matches the opaque id or the group name; ``find`` is a
case-insensitive substring match over group name, display name, mail and
opaque id, sorted by group name (Reva's groupprovider ``FindGroups``).
"""

from __future__ import annotations

from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res

from .errors import InvalidArgument, NotFound
from .users import UserDirectory

CLAIMS = ("group_name", "display_name", "mail", "gid_number")


class GroupDirectory:
    """Lookup and search over the groups of one site.

    Args:
        users: the site's users; their ``groups`` lists define the groups.
    """

    def __init__(self, users: UserDirectory) -> None:
        self.domain = users.domain
        members: dict[str, list[user_res.UserId]] = {}
        for account in users.accounts:
            for name in account.user.groups:
                if name:
                    members.setdefault(name, []).append(account.user.id)
        self._groups = {
            name: group_res.Group(
                id=group_res.GroupId(idp=self.domain, opaque_id=name, type=group_res.GROUP_TYPE_REGULAR),
                group_name=name, display_name=name, members=ids)
            for name, ids in sorted(members.items())
        }

    @property
    def names(self) -> list[str]:
        return list(self._groups)

    def _lookup(self, group_id: group_res.GroupId) -> group_res.Group:
        if group_id.idp and group_id.idp != self.domain:
            raise NotFound(f"group not found: {group_id.idp}/{group_id.opaque_id}")
        group = self._groups.get(group_id.opaque_id)
        if group is None:
            raise NotFound(f"group not found: {group_id.opaque_id}")
        return group

    def get(self, group_id: group_res.GroupId, skip_members: bool = False) -> group_res.Group:
        """The group whose opaque id (= name) is ``group_id.opaque_id``."""
        return _copy(self._lookup(group_id), skip_members)

    def get_by_claim(self, claim: str, value: str, skip_members: bool = False) -> group_res.Group:
        """Reva's ``GetGroupByClaim``: claim is one of ``CLAIMS``."""
        if claim not in CLAIMS:
            raise InvalidArgument(f"invalid claim {claim!r}: one of {', '.join(CLAIMS)}")
        for group in self._groups.values():
            field = str(group.gid_number) if claim == "gid_number" else getattr(group, claim)
            if field == value:
                return _copy(group, skip_members)
        raise NotFound(f"group not found: {claim}={value}")

    def members(self, group_id: group_res.GroupId) -> list[user_res.UserId]:
        return list(self._lookup(group_id).members)

    def find(self, query: str, group_type: int | None = None, skip_members: bool = False) -> list[group_res.Group]:
        q = query.lower()
        found = []
        for group in self._groups.values():
            fields = (group.group_name, group.display_name, group.mail, group.id.opaque_id)
            if not any(q in f.lower() for f in fields):
                continue
            if group_type is not None and group.id.type != group_type:
                continue
            found.append(_copy(group, skip_members))
        return sorted(found, key=lambda g: g.group_name)


def _copy(group: group_res.Group, skip_members: bool) -> group_res.Group:
    out = group_res.Group()
    out.CopyFrom(group)
    if skip_members:
        del out.members[:]
    return out
