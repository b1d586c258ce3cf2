"""The Share dialog's routes across institutions: einstein's Jupyter server
at site A finds marie of site B among his contacts (the fixture's accepted
OCM invitation), shares a notebook with her through OCM, changes her role and
revokes; marie's own Jupyter server at B lists what she got."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import nbformat
import pytest
from nbformat import v4

from tests.federation.conftest import SHARED
from tests.jupyter.conftest_bridge import Jupyter, jupyter_with_cs3collab


@pytest.fixture(scope="module")
async def lab_a(fed, tmp_path_factory) -> AsyncIterator[Jupyter]:
    """einstein's Jupyter server at A."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("lab-einstein-a"), gateway=fed.a.gateway, service_url=fed.svc_a.url, username="einstein"
    ) as server:
        yield server


async def listed_at_b(fed, name: str) -> dict | None:
    async with fed.lab_b.http() as http:
        answer = await http.get(f"/api/contents/{SHARED}", params={"content": 1})
    answer.raise_for_status()
    return next((item for item in answer.json()["content"] if item["name"] == name), None)


async def test_federated_contact_found_shared_changed_and_revoked(fed, lab_a):
    # the fixture made marie@B einstein's contact by an OCM invitation
    home = await fed.einstein.get_home()
    name = f"fed-share-{uuid.uuid4().hex[:6]}.ipynb"
    await fed.einstein.files.upload(f"{home}/{name}", nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("x")])).encode())
    async with lab_a.client() as http:
        people = (await http.get("api/cs3collab/people", params={"q": "marie"})).json()["people"]
        [contact] = [p for p in people if p["kind"] == "federated"]
        assert (contact["displayName"], contact["institution"]) == ("Marie Curie", "cesnet.test")

        made = await http.post(
            "api/cs3collab/shares",
            json={"path": name, "grantee": {k: contact[k] for k in ("kind", "id", "idp")}, "role": "editor"},
        )
        assert made.status_code == 201, made.text
        share = made.json()
        assert (share["kind"], share["role"]) == ("federated", "editor")
        assert (share["grantee"]["displayName"], share["grantee"]["institution"]) == ("Marie Curie", "cesnet.test")
        assert (await listed_at_b(fed, name))["writable"] is True

        twice = await http.post(
            "api/cs3collab/shares",
            json={"path": name, "grantee": {k: contact[k] for k in ("kind", "id", "idp")}, "role": "viewer"},
        )
        assert twice.status_code == 409
        assert twice.json()["message"] == f"Marie Curie already has access to {name}"

        changed = await http.patch(f"api/cs3collab/shares/federated/{share['id']}", json={"role": "viewer"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["role"] == "viewer"
        listed = (await http.get("api/cs3collab/shares", params={"path": name})).json()["shares"]
        assert [(s["kind"], s["grantee"]["displayName"], s["role"]) for s in listed] == [
            ("federated", "Marie Curie", "viewer")
        ]

        assert (await http.delete(f"api/cs3collab/shares/federated/{share['id']}")).status_code == 204
        assert (await http.get("api/cs3collab/shares", params={"path": name})).json()["shares"] == []


async def test_a_file_from_another_institution_is_not_reshared(fed):
    _, info, _ = await fed.share("editor", "y = 2")
    async with fed.lab_b.http() as http:
        answer = await http.get("/api/cs3collab/shares", params={"path": f"{SHARED}/{info.name}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["canShare"] is False
        assert "another institution" in answer.json()["reason"]
        refused = await http.post(
            "/api/cs3collab/shares",
            json={"path": f"{SHARED}/{info.name}", "grantee": {"kind": "user", "id": "richard", "idp": ""},
                  "role": "viewer"},
        )
        assert refused.status_code == 403
