"""Fixtures for the devstack tests: real devstack processes, raw CS3 stubs.

These tests talk to the devstack only through the raw cs3apis stubs
(``GatewayAPIStub`` over grpc.aio) and httpx, never through
``cs3collab.cs3``, so they check the wire behaviour on their own.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from tests.support.processes import devstack

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}
OK = code_pb2.CODE_OK


@dataclass
class Stack:
    """Where a devstack answers: what the raw-stub client below needs."""

    gateway: str
    http: str
    domain: str
    data: Path


@contextlib.asynccontextmanager
async def run_devstack(data: Path, *args: str):
    """A devstack process (``cs3collab devstack --data DATA ARGS`` on free
    ports), through the suite's one process runner."""
    async with devstack(data, domain=None, extra=args) as running:
        yield Stack(running.gateway, running.http_url, running.domain, running.data_dir)


def path_ref(path: str) -> sp_res.Reference:
    return sp_res.Reference(path=path)


def id_ref(rid: sp_res.ResourceId, path: str = ".") -> sp_res.Reference:
    return sp_res.Reference(resource_id=rid, path=path)


class Client:
    """Thin helpers over the raw stubs: only what the tests repeat."""

    def __init__(self, stack: Stack, channel: grpc.aio.Channel, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.stub = gw_grpc.GatewayAPIStub(channel)
        self.http = http

    @staticmethod
    def md(token: str):
        return (("x-access-token", token),)

    async def login(self, username: str) -> str:
        res = await self.stub.Authenticate(gw.AuthenticateRequest(
            type="basic", client_id=username, client_secret=PASSWORDS[username]))
        assert res.status.code == OK, res.status
        return res.token

    async def home(self, token: str) -> str:
        res = await self.stub.GetHome(sp_api.GetHomeRequest(), metadata=self.md(token))
        assert res.status.code == OK, res.status
        return res.path

    async def stat(self, token: str, ref: sp_res.Reference, keys=()):
        return await self.stub.Stat(sp_api.StatRequest(ref=ref, arbitrary_metadata_keys=list(keys)),
                                    metadata=self.md(token))

    async def mkdir(self, token: str, ref: sp_res.Reference) -> None:
        res = await self.stub.CreateContainer(sp_api.CreateContainerRequest(ref=ref), metadata=self.md(token))
        assert res.status.code == OK, res.status

    async def workdir(self, token: str) -> str:
        path = f"{await self.home(token)}/t-{uuid.uuid4().hex[:10]}"
        await self.mkdir(token, path_ref(path))
        return path

    async def initiate_upload(self, token: str, ref: sp_res.Reference, **options):
        return await self.stub.InitiateFileUpload(sp_api.InitiateFileUploadRequest(ref=ref, **options),
                                                  metadata=self.md(token))

    async def put(self, token: str, init, data: bytes, headers=None) -> httpx.Response:
        proto = next(p for p in init.protocols if p.protocol == "simple")
        hdrs = {"x-access-token": token, "X-Reva-Transfer": proto.token, **(headers or {})}
        return await self.http.put(proto.upload_endpoint, content=data, headers=hdrs)

    async def upload(self, token: str, ref: sp_res.Reference, data: bytes, headers=None, **options):
        """Initiate and PUT; assert the initiate is OK; return the HTTP response."""
        init = await self.initiate_upload(token, ref, **options)
        assert init.status.code == OK, init.status
        return await self.put(token, init, data, headers)

    async def initiate_download(self, token: str, ref: sp_res.Reference, version_key: str = ""):
        opaque = None
        if version_key:
            opaque = types_pb2.Opaque(map={"version_key": types_pb2.OpaqueEntry(
                decoder="plain", value=version_key.encode())})
        return await self.stub.InitiateFileDownload(
            sp_api.InitiateFileDownloadRequest(ref=ref, opaque=opaque), metadata=self.md(token))

    async def get(self, token: str, init) -> httpx.Response:
        proto = next(p for p in init.protocols if p.protocol == "simple")
        return await self.http.get(proto.download_endpoint,
                                   headers={"x-access-token": token, "X-Reva-Transfer": proto.token})

    async def download(self, token: str, ref: sp_res.Reference, version_key: str = "") -> bytes:
        init = await self.initiate_download(token, ref, version_key)
        assert init.status.code == OK, init.status
        res = await self.get(token, init)
        assert res.status_code == 200, res
        return res.content


@contextlib.asynccontextmanager
async def connect(stack: Stack):
    async with grpc.aio.insecure_channel(stack.gateway) as channel, httpx.AsyncClient(timeout=30) as http:
        yield Client(stack, channel, http)


@pytest.fixture(scope="session")
async def stack(tmp_path_factory):
    """The devstack process shared by most tests (domain ``site-a.test``)."""
    async with run_devstack(tmp_path_factory.mktemp("devstack"), "--domain", "site-a.test") as running:
        yield running


@pytest.fixture(scope="session")
async def cs3(stack):
    async with connect(stack) as client:
        yield client


@pytest.fixture
async def einstein(cs3):
    return await cs3.login("einstein")


@pytest.fixture
async def marie(cs3):
    return await cs3.login("marie")


@pytest.fixture
async def richard(cs3):
    return await cs3.login("richard")


@pytest.fixture
async def workdir(cs3, einstein):
    """A fresh folder in einstein's home."""
    return await cs3.workdir(einstein)
