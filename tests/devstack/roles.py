"""Reva's viewer and editor permission sets (pkg/permissions/role.go), written
out independently of the devstack's own table so the tests check it."""

from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

VIEWER = sp_res.ResourcePermissions(
    get_path=True, initiate_file_download=True, list_container=True, list_file_versions=True,
    list_recycle=True, stat=True)
EDITOR = sp_res.ResourcePermissions(
    get_path=True, initiate_file_download=True, list_container=True, list_file_versions=True,
    list_recycle=True, stat=True, initiate_file_upload=True, restore_file_version=True,
    restore_recycle_item=True, create_container=True, delete=True, move=True, purge_recycle=True)
