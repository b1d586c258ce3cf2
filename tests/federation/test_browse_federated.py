"""The CS3 file browser's routes for a federated (OCM) share: marie at site B
(cesnet.test) receives a notebook einstein shared from site A
(cernbox.test); her own Jupyter server lists it pending with who shared it
and from which institution, accepts it, and describes it in File info."""

from __future__ import annotations

from urllib.parse import quote

from cs3collab.cs3 import CS3Client, roles
from tests.conftest import DEMO_PASSWORDS

SHARED = "Shared with me"


async def received_id(fed, remote_share_id: str) -> str:
    """marie's id (at B) of the received share that einstein's share became."""
    async with CS3Client(fed.b.gateway) as client:
        marie = await client.login("marie", DEMO_PASSWORDS["marie"])
        [found] = [r.id.opaque_id for r in await marie.ocm.list_received() if r.remote_share_id == remote_share_id]
    return found


async def test_a_federated_share_is_listed_accepted_and_described(fed):
    _, info, share = await fed.share(roles.EDITOR, "z = 3")
    share_id = await received_id(fed, share.id.opaque_id)
    async with fed.lab_b.http() as http:
        listing = await http.get("/api/cs3collab/received")
        assert listing.status_code == 200, listing.text
        [entry] = [s for s in listing.json()["shares"] if (s["kind"], s["id"]) == ("federated", share_id)]
        assert entry["state"] == "pending" and entry["path"] is None
        assert entry["name"] == info.name and entry["type"] == "notebook" and entry["role"] == "editor"
        assert entry["owner"]["displayName"] == "Albert Einstein"
        assert entry["owner"]["institution"] == entry["owner"]["idp"] == "cernbox.test"

        accepted = await http.post(f"/api/cs3collab/received/federated/{quote(share_id, safe='')}",
                                   json={"state": "accepted"})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted"
        assert accepted.json()["path"] == f"{SHARED}/{info.name}"

        described = await http.get("/api/cs3collab/info", params={"path": accepted.json()["path"]})
        assert described.status_code == 200, described.text
        about = described.json()
        assert about["owner"]["displayName"] == "Albert Einstein" and about["owner"]["idp"] == "cernbox.test"
        assert about["permissions"] == {"role": "editor", "can": ["read", "write"]}
        # the shares are einstein's to see; size, versions and lock are asked of site A
        assert about["shares"] is None and about["versions"] == 0 and about["size"] > 0
