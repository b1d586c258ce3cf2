"""User shares (cs3.sharing.collaboration): create, update, remove, list,
and the recipient's view (received shares).

Follows cs3org/reva pkg/share/manager/json/json.go (a second share of the
same resource to the same grantee is AlreadyExists; received shares start
PENDING) and the gateway's usershareprovider.go. Access does not depend on
the received state: like Reva's grants on the resource, a share gives its
permissions as soon as it exists. Accepting a share mounts it at
``/Shares/<mount point>`` for the recipient (default: the resource's name,
made unique with `` (n)``). Group shares match the group names listed in
the user's ``groups``. Shares to users of another idp are refused: those are
OCM shares.
"""

from __future__ import annotations

import time
import uuid

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from . import access as A
from . import permissions as P
from .errors import AlreadyExists, InvalidArgument, NotFound
from .store import Tree, user_key
from .tokens import Identity

COLUMNS = "id, node_id, owner, creator, grantee, grantee_key, perms, ctime_ns, mtime_ns, expires"


def _grantee_key(tree: Tree, grantee: sp_res.Grantee) -> tuple[str, sp_res.Grantee]:
    out = sp_res.Grantee()
    out.CopyFrom(grantee)
    if grantee.type == sp_res.GRANTEE_TYPE_USER and grantee.user_id.opaque_id:
        if not out.user_id.idp:
            out.user_id.idp = tree.users.domain
        if out.user_id.idp != tree.users.domain:
            raise InvalidArgument("users of another site are reached with OCM shares")
        out.user_id.CopyFrom(tree.users.get(out.user_id).id)
        return "user:" + user_key(out.user_id), out
    if grantee.type == sp_res.GRANTEE_TYPE_GROUP and grantee.group_id.opaque_id:
        return "group:" + grantee.group_id.opaque_id, out
    raise InvalidArgument("grantee must be a user or a group with an id")


def _proto(tree: Tree, row) -> share_res.Share:
    sid, node_id, owner, creator, grantee, _, perms, ctime, mtime, expires = row
    node = tree.node(node_id)
    share = share_res.Share(
        id=share_res.ShareId(opaque_id=sid),
        resource_id=A.resource_id(tree, node),
        permissions=share_res.SharePermissions(permissions=P.to_proto(frozenset(p for p in perms.split(",") if p))),
        grantee=sp_res.Grantee.FromString(grantee),
        owner=user_res.UserId.FromString(owner),
        creator=user_res.UserId.FromString(creator),
        ctime=A.timestamp(ctime),
        mtime=A.timestamp(mtime),
    )
    if expires is not None:
        share.expiration.seconds = int(expires)
    return share


def _is_manager(caller: Identity, row) -> bool:
    owner, creator = user_res.UserId.FromString(row[2]), user_res.UserId.FromString(row[3])
    return caller.user_key in ((owner.idp, owner.opaque_id), (creator.idp, creator.opaque_id))


def _is_grantee(caller: Identity, row) -> bool:
    return row[5] in A.grantee_keys(caller)


def _find(tree: Tree, ref: share_res.ShareReference):
    if ref.HasField("id"):
        row = tree.conn.execute(f"SELECT {COLUMNS} FROM shares WHERE id=?", (ref.id.opaque_id,)).fetchone()
    elif ref.HasField("key"):
        key, _ = _grantee_key(tree, ref.key.grantee)
        row = tree.conn.execute(f"SELECT {COLUMNS} FROM shares WHERE node_id=? AND grantee_key=?",
                                (ref.key.resource_id.opaque_id, key)).fetchone()
    else:
        raise InvalidArgument("share reference needs an id or a key")
    if row is None:
        raise NotFound("share not found")
    return row


def create_share(tree: Tree, caller: Identity, resource_id: sp_res.ResourceId,
                 grant: share_res.ShareGrant) -> share_res.Share:
    node = A.existing(tree, caller, sp_res.Reference(resource_id=resource_id, path="."))
    A.allowed(tree, caller, node, "add_grant")
    key, grantee = _grantee_key(tree, grant.grantee)
    if key == "user:" + user_key(caller.user.id):
        raise InvalidArgument("cannot share with oneself")
    perms = P.from_proto(grant.permissions.permissions)
    if not perms:
        raise InvalidArgument("a share needs permissions")
    if tree.conn.execute("SELECT 1 FROM shares WHERE node_id=? AND grantee_key=?", (node.id, key)).fetchone():
        raise AlreadyExists("the resource is already shared with this grantee")
    now = time.time_ns()
    expires = grant.expiration.seconds if grant.HasField("expiration") and grant.expiration.seconds else None
    sid = str(uuid.uuid4())
    tree.conn.execute(f"INSERT INTO shares ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", (
        sid, node.id, node.owner.SerializeToString(), caller.user.id.SerializeToString(),
        grantee.SerializeToString(), key, ",".join(sorted(perms)), now, now, expires))
    return get_share(tree, caller, share_res.ShareReference(id=share_res.ShareId(opaque_id=sid)))


def get_share(tree: Tree, caller: Identity, ref: share_res.ShareReference) -> share_res.Share:
    row = _find(tree, ref)
    if not (_is_manager(caller, row) or _is_grantee(caller, row)):
        raise NotFound("share not found")
    return _proto(tree, row)


def remove_share(tree: Tree, caller: Identity, ref: share_res.ShareReference) -> None:
    row = _find(tree, ref)
    if not _is_manager(caller, row):
        raise NotFound("share not found")
    tree.conn.execute("DELETE FROM received WHERE share_id=?", (row[0],))
    tree.conn.execute("DELETE FROM shares WHERE id=?", (row[0],))


def update_share(tree: Tree, caller: Identity, ref: share_res.ShareReference,
                 perms: sp_res.ResourcePermissions | None, expiration=None) -> share_res.Share:
    row = _find(tree, ref)
    if not _is_manager(caller, row):
        raise NotFound("share not found")
    if perms is not None:
        names = P.from_proto(perms)
        if not names:
            raise InvalidArgument("a share needs permissions")
        tree.conn.execute("UPDATE shares SET perms=? WHERE id=?", (",".join(sorted(names)), row[0]))
    if expiration is not None:
        tree.conn.execute("UPDATE shares SET expires=? WHERE id=?", (expiration.seconds or None, row[0]))
    tree.conn.execute("UPDATE shares SET mtime_ns=? WHERE id=?", (time.time_ns(), row[0]))
    return _proto(tree, _find(tree, ref))


def _matches(share: share_res.Share, filters) -> bool:
    """Filters of one type are OR-ed, different types AND-ed (Reva)."""
    by_type: dict[int, list[bool]] = {}
    for f in filters:
        kind = f.WhichOneof("term")
        if kind == "resource_id":
            ok = (share.resource_id.opaque_id == f.resource_id.opaque_id
                  and (not f.resource_id.storage_id or f.resource_id.storage_id == share.resource_id.storage_id))
        elif kind in ("owner", "creator"):
            want, have = getattr(f, kind), getattr(share, kind)
            ok = (want.idp, want.opaque_id) == (have.idp, have.opaque_id)
        elif kind == "grantee_type":
            ok = share.grantee.type == f.grantee_type
        elif kind == "space_id":
            ok = share.resource_id.space_id == f.space_id
        else:
            continue
        by_type.setdefault(f.type, []).append(ok)
    return all(any(v) for v in by_type.values())


def list_shares(tree: Tree, caller: Identity, filters) -> list[share_res.Share]:
    rows = tree.conn.execute(f"SELECT {COLUMNS} FROM shares ORDER BY ctime_ns").fetchall()
    shares = [_proto(tree, r) for r in rows if _is_manager(caller, r)]
    return [s for s in shares if _matches(s, filters)]


def _received(tree: Tree, caller: Identity, row) -> share_res.ReceivedShare:
    state = tree.conn.execute("SELECT state, mount_point, hidden FROM received WHERE share_id=? AND user_key=?",
                              (row[0], user_key(caller.user.id))).fetchone()
    state, mount, hidden = state or (share_res.SHARE_STATE_PENDING, "", 0)
    rs = share_res.ReceivedShare(share=_proto(tree, row), state=state, hidden=bool(hidden))
    if mount:
        rs.mount_point.path = mount
    return rs


def list_received(tree: Tree, caller: Identity, filters) -> list[share_res.ReceivedShare]:
    rows = tree.conn.execute(f"SELECT {COLUMNS} FROM shares ORDER BY ctime_ns").fetchall()
    out = [_received(tree, caller, r) for r in rows if _is_grantee(caller, r) and not _is_manager(caller, r)]
    states = [f.state for f in filters if f.WhichOneof("term") == "state"]
    others = [f for f in filters if f.WhichOneof("term") != "state"]
    return [rs for rs in out if (not states or rs.state in states) and _matches(rs.share, others)]


def get_received(tree: Tree, caller: Identity, ref: share_res.ShareReference) -> share_res.ReceivedShare:
    row = _find(tree, ref)
    if not _is_grantee(caller, row):
        raise NotFound("share not found")
    return _received(tree, caller, row)


def update_received(tree: Tree, caller: Identity, wanted: share_res.ReceivedShare,
                    paths: list[str]) -> share_res.ReceivedShare:
    ref = share_res.ShareReference(id=wanted.share.id)
    current = get_received(tree, caller, ref)
    if not paths:
        raise InvalidArgument("update_mask must name state, mount_point or hidden")
    state, hidden = current.state, current.hidden
    mount = current.mount_point.path
    for path in paths:
        if path == "state":
            if wanted.state not in (share_res.SHARE_STATE_PENDING, share_res.SHARE_STATE_ACCEPTED,
                                    share_res.SHARE_STATE_REJECTED):
                raise InvalidArgument("invalid share state")
            state = wanted.state
        elif path == "mount_point":
            mount = A.valid_name(wanted.mount_point.path)
        elif path == "hidden":
            hidden = wanted.hidden
        else:
            raise InvalidArgument(f"cannot update {path!r}")
    me = user_key(caller.user.id)
    if state == share_res.SHARE_STATE_ACCEPTED:
        base = mount or tree.node(current.share.resource_id.opaque_id).name
        taken = {r[0] for r in tree.conn.execute(
            "SELECT mount_point FROM received WHERE user_key=? AND state=? AND share_id<>?",
            (me, share_res.SHARE_STATE_ACCEPTED, current.share.id.opaque_id))}
        mount, n = base, 1
        while mount in taken:
            mount, n = f"{base} ({n})", n + 1
    tree.conn.execute("INSERT OR REPLACE INTO received (share_id, user_key, state, mount_point, hidden) "
                      "VALUES (?,?,?,?,?)", (current.share.id.opaque_id, me, state, mount, int(hidden)))
    return get_received(tree, caller, ref)
