"""OCM invitations: becoming contacts with users of other sites (``session.invites``).

The Reva/OCM way to find a federated user: one user generates an invite
token and hands it over (mail, chat); the other's site forwards it to the
inviting site (``POST /invite-accepted``), and from then on each appears in
the other's accepted users, which is what a sharing dialog searches.

OCM 1.4 hands an invitation over as one *invite string*: base64url of
``<token>@<provider fqdn>`` (cs3org/OCM-API pull requests #282, which made it
the canonical form every server must accept, and #383, which made it
base64url; example ``YTU1...Lm9yZw`` for
``a55a966e-15c1-4cb9-a39d-4e4c54399baf@cloud.example.org``).
:func:`parse_invite` reads it (padded or not, base64url or the older plain
base64, or the undecoded ``token@provider``) and a bare token with its
provider given apart, as before.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.ocm.invite.v1beta1 import invite_api_pb2 as invite_api
from cs3.ocm.invite.v1beta1 import resources_pb2 as invite
from cs3.ocm.provider.v1beta1 import provider_api_pb2 as provider_api
from cs3.types.v1beta1 import types_pb2

from cs3collab.cs3.errors import InvalidArgument

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session

_PROVIDER = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{1,512}$")
_B64 = re.compile(r"^[A-Za-z0-9_+/-]+={0,2}$")


def invite_string(token: str, provider: str) -> str:
    """The OCM 1.4 invite string for ``token`` of ``provider`` (base64url, unpadded)."""
    return base64.urlsafe_b64encode(f"{token}@{provider}".encode()).decode("ascii").rstrip("=")


def _split(text: str) -> tuple[str, str] | None:
    token, sep, provider = text.rpartition("@")
    if sep and _TOKEN.match(token) and _PROVIDER.match(provider):
        return token, provider.lower()
    return None


def parse_invite(invite: str, provider: str = "") -> tuple[str, str]:
    """(token, provider domain) of an invitation as a person pastes it: an
    OCM 1.4 invite string, a ``token@provider``, or a bare token with
    ``provider`` given apart. A provider given apart that differs from the
    one in the string, or no provider at all → InvalidArgument (in words)."""
    text = (invite or "").strip()
    if not text:
        raise InvalidArgument("the invitation is empty", operation="accept invitation")
    found = _split(text)
    if found is None and _B64.match(text) and len(text) <= 2048:
        try:
            decoded = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4),
                                       validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        found = _split(decoded) if decoded.isprintable() else None
    given = provider.strip().lower()
    if found is not None:
        if given and given != found[1]:
            raise InvalidArgument(f"the invitation is from {found[1]}, not {given}", operation="accept invitation")
        return found
    if not given:
        raise InvalidArgument("this is not an OCM invite string (base64url of token@provider): paste the whole "
                              "invitation, or give the inviting provider", operation="accept invitation")
    if not _TOKEN.match(text):
        raise InvalidArgument("the invite token has characters a token cannot have", operation="accept invitation")
    return text, given


def ocm_address(user: identity.User | identity.UserId) -> str:
    """``<opaque id>@<domain>``, how a federated user is written."""
    uid = user.id if isinstance(user, identity.User) else user
    return f"{uid.opaque_id}@{uid.idp}"


class InvitesAPI:
    """Invite tokens and accepted (federated) users of the session's user."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def generate(self, description: str = "", expires_in: float | None = None) -> invite.InviteToken:
        """A new invite token (its ``token`` is what the invitee needs).

        ``expires_in`` (seconds) is sent as opaque ``expires_in``: the
        devstack honours it, Reva uses its configured lifetime (24 h by default).
        """
        opaque = None
        if expires_in is not None:
            opaque = types_pb2.Opaque(map={"expires_in": types_pb2.OpaqueEntry(
                decoder="plain", value=str(expires_in).encode())})
        request = invite_api.GenerateInviteTokenRequest(description=description, opaque=opaque)
        reply = await self._session.call("GenerateInviteToken", request, target="invite token", idempotent=False)
        return reply.invite_token

    async def list_tokens(self) -> list[invite.InviteToken]:
        reply = await self._session.call("ListInviteTokens", invite_api.ListInviteTokensRequest(),
                                         target="invite tokens")
        return list(reply.invite_tokens)

    async def forward(self, token: str, origin_domain: str = "") -> identity.User:
        """Accept an invitation from a user of ``origin_domain``; returns the
        inviting user, now a contact (a federated user). ``token`` may be the
        OCM 1.4 invite string, which names the origin itself
        (:func:`parse_invite`; ``origin_domain`` may then be left empty).

        The origin provider is looked up with GetInfoByDomain (NotFound when
        the site does not trust it), as Reva's front-ends do, then the gateway
        forwards the token (ForwardInvite). Refusals from the origin: an
        expired or invalid token is InvalidArgument, an unknown one NotFound (Reva 1.x),
        an invitation accepted before AlreadyExists, and an origin that does
        not trust this site PermissionDenied. (Reva 3.x answers an unknown
        token like an expired one: InvalidArgument.)
        """
        token, origin_domain = parse_invite(token, origin_domain)
        info = await self._session.call("GetInfoByDomain", provider_api.GetInfoByDomainRequest(domain=origin_domain),
                                        target=f"OCM provider {origin_domain}")
        request = invite_api.ForwardInviteRequest(invite_token=invite.InviteToken(token=token),
                                                  origin_system_provider=info.provider_info)
        reply = await self._session.call("ForwardInvite", request, target=f"invite from {origin_domain}",
                                         idempotent=False)
        return identity.User(id=reply.user_id, mail=reply.email, display_name=reply.display_name)

    async def find_accepted_users(self, query: str = "") -> list[identity.User]:
        """Contacts whose name, mail or ``id@domain`` contain ``query`` (all when empty)."""
        reply = await self._session.call("FindAcceptedUsers", invite_api.FindAcceptedUsersRequest(filter=query),
                                         target=f"accepted users matching {query!r}")
        return list(reply.accepted_users)

    async def get_accepted_user(self, user_id: identity.UserId) -> identity.User:
        reply = await self._session.call("GetAcceptedUser", invite_api.GetAcceptedUserRequest(remote_user_id=user_id),
                                         target=f"accepted user {ocm_address(user_id)}")
        return reply.remote_user

    async def delete_accepted_user(self, user_id: identity.UserId) -> None:
        """Forget a contact (here only: the other site keeps its side)."""
        await self._session.call("DeleteAcceptedUser", invite_api.DeleteAcceptedUserRequest(remote_user_id=user_id),
                                 target=f"accepted user {ocm_address(user_id)}")
