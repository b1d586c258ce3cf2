"""Who holds a file's lock, as the versions listing names it (File info at
another site shows it): a participant of the room first, else the gateway's
answer for the lock's user, never a namesake of another institution and never
a raw id. The gateway is a fake here (unit test of versions.lock_with_holder);
tests/federation/test_versions_federated.py asks a real one."""

from __future__ import annotations

from types import SimpleNamespace

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import NotFound
from cs3collab.service.identity import Identity
from cs3collab.service.versions import lock_with_holder


def locked_by(opaque_id: str, idp: str, app: str = "Collabora Online") -> storage.ResourceInfo:
    return storage.ResourceInfo(lock=storage.Lock(
        lock_id="l-1", app_name=app, user=identity.UserId(opaque_id=opaque_id, idp=idp)))


def gateway(*users: identity.User):
    async def get(user_id):
        for user in users:
            if user.id.opaque_id == user_id.opaque_id:  # by opaque id only, as a gateway may answer
                return user
        raise NotFound("no such user", operation="GetUser")
    return SimpleNamespace(username="caller", users=SimpleNamespace(get=get))


EINSTEIN = identity.User(id=identity.UserId(opaque_id="einstein", idp="cernbox.test"), username="einstein",
                         display_name="Albert Einstein")
LOCAL_MARIE = identity.User(id=identity.UserId(opaque_id="marie", idp="cernbox.test"), username="marie",
                            display_name="Marie Curie")


async def test_the_holder_is_named_with_institution():
    lock = await lock_with_holder(gateway(EINSTEIN), locked_by("einstein", "cernbox.test"), "/a.ipynb")
    assert lock["app"] == "Collabora Online"
    assert lock["holder"] == {"displayName": "Albert Einstein", "username": "einstein", "idp": "cernbox.test"}


async def test_a_holder_from_another_site_is_named_from_the_room_not_a_local_namesake():
    remote = Identity("marie", "Marie Curie", "cesnet.test", "marie", federated=True)
    info = locked_by("marie", "cesnet.test", app="cs3collab")
    lock = await lock_with_holder(gateway(LOCAL_MARIE), info, "/a.ipynb", [remote])
    assert lock["holder"] == {"displayName": "Marie Curie", "username": "marie", "idp": "cesnet.test"}
    # not in the room: the gateway's marie is another person (another institution), so nobody is named
    assert (await lock_with_holder(gateway(LOCAL_MARIE), info, "/a.ipynb"))["holder"] is None


async def test_an_unknown_holder_is_left_out_and_no_lock_is_none():
    lock = await lock_with_holder(gateway(), locked_by("f00-ba7", "cernbox.test"), "/a.ipynb")
    assert lock == {"app": "Collabora Online", "expires": None, "holder": None}
    assert await lock_with_holder(gateway(EINSTEIN), storage.ResourceInfo(), "/a.ipynb") is None
