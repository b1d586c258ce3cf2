"""The one place where CS3, gRPC and HTTP outcomes become typed errors."""

import grpc
import pytest
from cs3.rpc.v1beta1 import code_pb2, status_pb2

from cs3collab.cs3 import errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (code_pb2.CODE_NOT_FOUND, errors.NotFound),
        (code_pb2.CODE_PERMISSION_DENIED, errors.PermissionDenied),
        (code_pb2.CODE_UNAUTHENTICATED, errors.Unauthenticated),
        (code_pb2.CODE_FAILED_PRECONDITION, errors.FailedPrecondition),
        (code_pb2.CODE_LOCKED, errors.Locked),
        (code_pb2.CODE_ALREADY_EXISTS, errors.AlreadyExists),
        (code_pb2.CODE_INVALID_ARGUMENT, errors.InvalidArgument),
        (code_pb2.CODE_UNAVAILABLE, errors.Unavailable),
        (code_pb2.CODE_UNIMPLEMENTED, errors.Unimplemented),
        (code_pb2.CODE_INTERNAL, errors.InternalError),
        (code_pb2.CODE_INVALID, errors.InternalError),
    ],
)
def test_every_non_ok_status_becomes_its_typed_error(code, cls):
    status = status_pb2.Status(code=code, message="reva says why", trace="t-1")
    with pytest.raises(cls) as caught:
        errors.raise_for_status(status, "Stat", "/users/einstein/a.ipynb")
    err = caught.value
    assert err.operation == "Stat"
    assert err.target == "/users/einstein/a.ipynb"
    assert err.message == "reva says why"
    assert "/users/einstein/a.ipynb" in str(err) and "reva says why" in str(err) and "t-1" in str(err)


def test_ok_status_passes():
    errors.raise_for_status(status_pb2.Status(code=code_pb2.CODE_OK), "Stat")


def test_locked_is_a_failed_precondition():
    # callers that only care "someone else holds it" can catch FailedPrecondition
    assert issubclass(errors.Locked, errors.FailedPrecondition)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.Unauthenticated),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (409, errors.FailedPrecondition),
        (412, errors.FailedPrecondition),
        (413, errors.TooLarge),
        (423, errors.Locked),
        (500, errors.Unavailable),
        (418, errors.InvalidArgument),
    ],
)
def test_http_transfer_statuses(status, cls):
    err = errors.error_from_http(status, "body text\n", "upload", "/users/einstein/a.txt")
    assert isinstance(err, cls)
    assert err.http_status == status
    assert f"HTTP {status}" in str(err) and "body text" in str(err)


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def test_grpc_unavailable_names_the_gateway():
    err = errors.error_from_grpc(
        _FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"), "Stat", "/x", "127.0.0.1:1"
    )
    assert isinstance(err, errors.Unavailable)
    assert "127.0.0.1:1" in str(err)


def test_grpc_unauthenticated_from_interceptor():
    err = errors.error_from_grpc(_FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "token expired"), "Stat")
    assert isinstance(err, errors.Unauthenticated)
    assert "token expired" in str(err)


def test_reva_invalid_token_refusal_is_unauthenticated():
    # Reva's auth interceptor: gRPC PERMISSION_DENIED "auth: core access token is invalid"
    err = errors.error_from_grpc(
        _FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "auth: core access token is invalid"), "Stat"
    )
    assert isinstance(err, errors.Unauthenticated)
    scope = errors.error_from_grpc(
        _FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "auth: core access token not authorized"), "Stat"
    )
    assert isinstance(scope, errors.PermissionDenied)
