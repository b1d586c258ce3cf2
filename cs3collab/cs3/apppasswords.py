"""Application passwords (``session.app_passwords``): Reva's applicationauth.

An app password belongs to the calling user and carries a token scope;
logging in with it (``client.authenticate("appauth", username, password)``)
gives a session limited to that scope. cs3collab uses it to give a shared
kernel an authority of exactly the shared resource
(cs3collab/kernels/authority.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cs3.auth.applications.v1beta1 import applications_api_pb2 as app_api
from cs3.auth.applications.v1beta1 import resources_pb2 as app_res
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.types.v1beta1 import types_pb2 as types

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


class AppPasswordsAPI:
    """The session user's app passwords."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def generate(self, scopes: dict[str, auth_res.Scope], *, label: str = "",
                       lifetime: float | None = None) -> app_res.AppPassword:
        """Create an app password limited to ``scopes``, valid ``lifetime``
        seconds (None: until invalidated). The clear password is in the
        answer's ``password``, and only there."""
        request = app_api.GenerateAppPasswordRequest(token_scope=scopes, label=label)
        if lifetime is not None:
            request.expiration.CopyFrom(types.Timestamp(seconds=int(time.time() + lifetime)))
        reply = await self._session.call("GenerateAppPassword", request, target=label or "app password",
                                         idempotent=False)
        return reply.app_password

    async def list(self) -> list[app_res.AppPassword]:
        reply = await self._session.call("ListAppPasswords", app_api.ListAppPasswordsRequest(), target="app passwords")
        return list(reply.app_passwords)

    async def invalidate(self, password: str) -> None:
        await self._session.call("InvalidateAppPassword", app_api.InvalidateAppPasswordRequest(password=password),
                                 target="app password")
