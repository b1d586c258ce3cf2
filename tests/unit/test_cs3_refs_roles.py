"""Naming resources and reading roles from permission sets."""

import pytest
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import refs, roles


def test_resource_id_string_round_trip():
    rid = storage.ResourceId(storage_id="site-a", space_id="einstein", opaque_id="n-1")
    text = refs.format_resource_id(rid)
    assert text == "site-a$einstein!n-1"
    assert refs.parse_resource_id(text) == rid


@pytest.mark.parametrize("junk", ["", "no-bang", "!only-opaque", "storage$space!"])
def test_parse_resource_id_rejects_junk(junk):
    with pytest.raises(ValueError):
        refs.parse_resource_id(junk)


def test_references():
    rid = storage.ResourceId(storage_id="s", space_id="p", opaque_id="o")
    assert refs.to_reference("/users/a").path == "/users/a"
    assert refs.to_reference(rid).path == "."
    assert refs.to_reference((rid, "sub/x.ipynb")).path == "./sub/x.ipynb"
    assert refs.describe((rid, "./x")) == "s$p!o:./x"
    with pytest.raises(ValueError):
        refs.to_reference("relative/path")


def test_roles_follow_reva_permission_sets():
    viewer = roles.permissions_for(roles.VIEWER)
    editor = roles.permissions_for(roles.EDITOR)
    assert viewer.initiate_file_download and viewer.stat and viewer.list_file_versions
    assert not viewer.initiate_file_upload and not viewer.delete
    assert editor.initiate_file_upload and editor.delete and editor.restore_file_version
    assert not editor.add_grant
    assert roles.role_of(viewer) == roles.VIEWER
    assert roles.role_of(editor) == roles.EDITOR
    assert roles.role_of(roles.owner_permissions()) == roles.EDITOR
    assert roles.role_of(storage.ResourcePermissions()) == roles.NONE
    with pytest.raises(ValueError):
        roles.permissions_for("superuser")
