"""cs3collab/jupyter/sharing.py alone, with a fake CS3 session: the people
search merges users, groups and federated contacts; OCM shares are listed
and named as federated; a source a gateway lacks does not break the search.
(The routes against a real gateway: tests/jupyter/test_sharing.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import AlreadyExists, Unimplemented
from cs3collab.cs3.ocm import access_methods, federated_user
from cs3collab.cs3.roles import owner_permissions
from cs3collab.jupyter.sharing import Sharing, Target, cannot_share_reason

ME = identity.User(id=identity.UserId(idp="cernbox.test", opaque_id="e-1"), username="einstein",
                   display_name="Albert Einstein")
MARIE = identity.User(id=identity.UserId(idp="cernbox.test", opaque_id="m-1"), username="marie",
                      display_name="Marie Curie", mail="marie@example.org")
CONTACT = identity.User(id=federated_user("r-9", "cesnet.test"), username="richard",
                        display_name="Richard Feynman", mail="richard@cesnet.test")
GROUP = group_res.Group(id=group_res.GroupId(idp="cernbox.test", opaque_id="physics-lovers"),
                        group_name="physics-lovers", display_name="Physics lovers")
RID = storage.ResourceId(storage_id="s", space_id="s", opaque_id="nb-1")


class FakeSession:
    def __init__(self, *, groups=True) -> None:
        self.user, self.username = ME, ME.username
        self.created: list = []

        async def find_users(query):
            return [u for u in (ME, MARIE) if query in u.username or query in u.display_name.lower()]

        async def find_groups(query):
            if not groups:
                raise Unimplemented("no groups here", operation="FindGroups")
            return [GROUP]

        async def find_contacts(query=""):
            return [CONTACT]

        async def create_ocm(resource_id, grantee, role):
            if self.created:
                raise AlreadyExists("share already exists", operation="CreateOCMShare")
            share = ocm.Share(id=ocm.ShareId(opaque_id="o-1"), resource_id=resource_id,
                              grantee=storage.Grantee(type=storage.GRANTEE_TYPE_USER, user_id=grantee),
                              access_methods=access_methods(role))
            share.ctime.seconds = 1_700_000_000
            self.created.append(share)
            return share

        async def list_ocm():
            return list(self.created)

        async def no_user_shares(rid):
            return []

        self.users = SimpleNamespace(find=find_users)
        self.groups = SimpleNamespace(find=find_groups)
        self.invites = SimpleNamespace(find_accepted_users=find_contacts)
        self.ocm = SimpleNamespace(create_share=create_ocm, list_shares=list_ocm)
        self.shares = SimpleNamespace(list=no_user_shares)


def sharing_for(session: FakeSession) -> Sharing:
    async def get_session():
        return session

    connection = SimpleNamespace(gateway="127.0.0.1:19000", session=get_session)
    return Sharing(connection, search_limit=5)


async def test_people_are_users_groups_and_contacts_without_me():
    people = await sharing_for(FakeSession()).people("ri")
    assert [(p["kind"], p["displayName"]) for p in people] == [
        ("user", "Marie Curie"),
        ("group", "Physics lovers"),
        ("federated", "Richard Feynman"),
    ]
    assert people[2]["institution"] == "cesnet.test"
    assert "username" in people[2]  # the dialog shows user@idp when the contact has one
    assert await sharing_for(FakeSession()).people(" ri ") == people
    einstein = await sharing_for(FakeSession()).people("einstein")
    assert [p["kind"] for p in einstein] == ["group", "federated"]  # never the caller
    assert await sharing_for(FakeSession()).people("r") == []  # one letter: nothing asked


async def test_a_gateway_without_groups_still_finds_people():
    people = await sharing_for(FakeSession(groups=False)).people("ri")
    assert [p["kind"] for p in people] == ["user", "federated"]


async def test_federated_share_is_listed_with_the_contact_name_and_role():
    session = FakeSession()
    sharing = sharing_for(session)
    info = storage.ResourceInfo(id=RID, name="a.ipynb", permission_set=owner_permissions())
    target = Target("a.ipynb", info, None)
    made = await sharing.create(target, {"kind": "federated", "id": "r-9", "idp": "cesnet.test"}, "editor")
    assert made["kind"] == "federated" and made["role"] == "editor"
    assert made["grantee"] == {"id": "r-9", "idp": "cesnet.test", "username": "richard",
                               "displayName": "Richard Feynman", "institution": "cesnet.test"}
    assert made["created"].startswith("2023-11-14T")
    assert await sharing.list(target) == [made]
    try:
        await sharing.create(target, {"kind": "federated", "id": "r-9", "idp": "cesnet.test"}, "viewer")
    except Exception as exc:  # noqa: BLE001 - the HTTPError the handler answers
        assert exc.status_code == 409
        assert exc.log_message == "Richard Feynman already has access to a.ipynb"
    else:
        raise AssertionError("a second share to the same person was accepted")


def test_the_cannot_share_reason_says_an_editor_and_the_owner():
    """The Share dialog's notice (issue 13: it once said "you are a editor of it")."""
    assert cannot_share_reason("a.ipynb", "editor") == (
        "You cannot share a.ipynb: you are an editor of it, and only its owner or people allowed to share can."
    )
    assert "you are a viewer of it," in cannot_share_reason("a.ipynb", "viewer")
    assert "you are the owner of it," in cannot_share_reason("a.ipynb", "owner")
    assert "your access does not allow it," in cannot_share_reason("a.ipynb", "none")
    for role in ("editor", "viewer", "owner", "none"):
        assert " a editor" not in cannot_share_reason("a.ipynb", role)
