"""Authentication, identity and tokens, against a real devstack gateway."""

import asyncio
import socket

import pytest
from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider

from cs3collab.cs3 import CS3Client, NotFound, PermissionDenied, Unauthenticated, Unavailable
from tests.support.processes import devstack


async def test_login_gives_identity_and_home(einstein, site):
    assert einstein.username == "einstein"
    assert einstein.user.display_name == "Albert Einstein"
    assert einstein.user.id.idp == site.domain
    me = await einstein.whoami()
    assert me.id == einstein.user.id
    home = await einstein.get_home()
    assert home.startswith("/") and "einstein" in home
    info = await einstein.files.stat(home)
    assert info.owner == einstein.user.id


async def test_wrong_password_is_unauthenticated(client):
    with pytest.raises(Unauthenticated) as caught:
        await client.login("einstein", "not-relativity")
    assert "einstein" in str(caught.value)


async def test_unknown_user_is_unauthenticated(client):
    with pytest.raises(Unauthenticated):
        await client.login("nobody", "x")


async def test_bearer_token_authenticates_the_same_user(client, einstein):
    again = await client.authenticate("bearer", "", einstein.token)
    assert again.user.id == einstein.user.id
    assert await again.get_home() == await einstein.get_home()


async def test_session_for_token_checks_the_token(client, marie):
    wrapped = await client.session_for_token(marie.token)
    assert wrapped.username == "marie"
    assert not wrapped.renewable
    with pytest.raises(Unauthenticated):
        await client.session_for_token("not-a-token")


async def test_forged_token_is_refused(client, einstein):
    forged = einstein.token[:-4] + ("AAAA" if not einstein.token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated):
        await client.call("GetHome", provider.GetHomeRequest(), token=forged)


async def test_another_users_home_is_not_readable(einstein, richard):
    home = await einstein.get_home()
    with pytest.raises((PermissionDenied, NotFound)):
        await richard.files.list(home)


@pytest.fixture(scope="module")
async def short_lived_site(tmp_path_factory):
    """A site whose tokens live five seconds, to see expiry for real (the
    calls made before expiry must fit in it on a loaded machine: one second
    did not, in a devstack test of the same kind)."""
    async with devstack(tmp_path_factory.mktemp("short"), extra=("--token-lifetime", "5")) as running:
        yield running


async def _wait_until_expired(client, token):
    # Token lifetime is wall-clock time: poll the gateway until it refuses.
    for _ in range(300):
        try:
            await client.session_for_token(token)
        except Unauthenticated:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("token never expired")


async def test_expired_token_renews_with_credentials(short_lived_site):
    async with CS3Client(short_lived_site.gateway) as client:
        session = await client.login("einstein", "relativity")
        first = session.token
        await _wait_until_expired(client, first)
        home = await session.get_home()  # renews by itself
        assert "einstein" in home
        assert session.token != first


async def test_expired_bare_token_is_unauthenticated(short_lived_site):
    async with CS3Client(short_lived_site.gateway) as client:
        login = await client.login("marie", "radioactivity")
        bare = await client.session_for_token(login.token)
        await _wait_until_expired(client, login.token)
        with pytest.raises(Unauthenticated):
            await bare.get_home()


async def test_unreachable_gateway_is_unavailable_naming_it():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on that port now
    async with CS3Client(f"127.0.0.1:{port}", retries=2, backoff=0.05, timeout=5) as client:
        with pytest.raises(Unavailable) as caught:
            await client.login("einstein", "relativity")
    assert f"127.0.0.1:{port}" in str(caught.value)
