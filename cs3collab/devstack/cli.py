"""``cs3collab devstack``: run one embedded CS3 site until SIGINT/SIGTERM.

Once both servers listen, prints exactly one line to stdout:

    cs3collab devstack ready: gateway=127.0.0.1:PORT http=http://127.0.0.1:PORT domain=NAME

followed by the demo logins (when the demo users are in use). Logs go to
stderr as key=value lines. With ``--oidc`` the ready line ends with
`` oidc=http://127.0.0.1:PORT``: the embedded OpenID Connect issuer.

Every site speaks OCM. Trusted peers come from ``--peer DOMAIN=URL``
(repeatable) and/or ``--ocm-providers FILE`` (Reva's ocm-providers.json),
which is read again whenever it changes: a launcher may start sites on
port 0 and write the file once it knows their URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .ocm_gateway import OCMSettings
from .ocm_peers import PeerSite, parse_peer_arg
from .oidc_issuer import OIDCClient
from .site import DevstackSite, OIDCSettings
from .users import UserDirectory


def add_devstack_parser(subparsers) -> argparse.ArgumentParser:
    """Declare the ``devstack`` subcommand and its settings."""
    p = subparsers.add_parser("devstack", help="run an embedded CS3 site (gRPC gateway + data server)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="data folder; everything the site stores lives here and survives restarts")
    p.add_argument("--port", type=int, default=0,
                   help="gRPC gateway port on 127.0.0.1 (default 0: pick a free port)")
    p.add_argument("--http-port", type=int, default=0,
                   help="HTTP data server port on 127.0.0.1 (default 0: pick a free port)")
    p.add_argument("--domain", default="localhost",
                   help="site domain: idp of its users, issuer of its tokens (default: localhost)")
    p.add_argument("--users", default=None,
                   help="Reva-style users JSON file (default: demo users einstein, marie, richard)")
    p.add_argument("--token-lifetime", type=float, default=3600,
                   help="access token lifetime in seconds (default: 3600)")
    p.add_argument("--max-upload-size", type=int, default=None,
                   help="largest accepted upload in bytes (default: no limit)")
    p.add_argument("--peer", action="append", default=[], type=_peer, metavar="DOMAIN=URL",
                   help="trust the OCM site DOMAIN whose HTTP server (discovery at URL/.well-known/ocm) "
                        "is URL; repeatable (default: none)")
    p.add_argument("--ocm-providers", default=None, metavar="FILE",
                   help="trusted OCM sites in Reva's ocm-providers.json format, re-read when the file "
                        "changes; may not exist yet (default: none)")
    p.add_argument("--public-url", default=None,
                   help="base URL peers reach this site's HTTP server at, advertised in OCM discovery "
                        "and share URIs (default: the site's own http URL)")
    p.add_argument("--ocm-webapp-url", default=None, metavar="URL",
                   help="base URL of this site's collaboration service, sent as the uri of the webapp protocol "
                        "(app cs3collab) of the OCM shares it sends (default: the providers file's "
                        "\"cs3collab\" service of this site, else <public url>/app/ocm/<share id>)")
    p.add_argument("--invite-token-lifetime", type=float, default=24 * 3600, metavar="SECONDS",
                   help="how long an OCM invite token is valid when its creator names no lifetime "
                        "(default: 86400, Reva's token_expiration of 24h)")
    p.add_argument("--ocm-require-invite", action="store_true",
                   help="log an OCM share's grantee in (ocmshares, ocmsharecode) only when they are an accepted "
                        "user of the share's creator, as Reva 3.x does (default: trusted peers stay auto-accepted)")
    p.add_argument("--ocm-http-sig", choices=("on", "off"), default="on",
                   help="OCM 1.4 HTTP signatures (RFC 9421): sign outgoing OCM requests, publish "
                        "/.well-known/jwks.json, advertise http-sig and refuse unsigned requests from peers that "
                        "advertise it (default on; off models Reva 3.x, OCM 1.3.0)")
    p.add_argument("--ocm-signing-key", default=None, metavar="FILE",
                   help="PEM file of the site's Ed25519 OCM signing key, created when missing, re-read when it "
                        "changes (a new key there is a rotation; the old one stays published) "
                        "(default: <data>/ocm-signing-key.pem)")
    p.add_argument("--ocm-require-signatures", action="store_true",
                   help="refuse unsigned OCM requests from every peer, also from those that do not advertise "
                        "http-sig (default off, as Reva)")
    p.add_argument("--ocm-scope-extra", action="append", default=[], metavar="METHOD",
                   help="a gateway method (e.g. ListFileVersions) that tokens of OCM shares may call besides "
                        "those of Reva's ocmshare scope, as on a site that patched its scope; repeatable "
                        "(default: none)")
    p.add_argument("--oidc", action="store_true",
                   help="run the embedded OpenID Connect issuer for the site's users on a port of its own and log "
                        "users in with its tokens (Authenticate type oidc, as Reva's OIDC auth manager); the ready "
                        "line then ends with oidc=URL (default: off)")
    p.add_argument("--oidc-issuer", default="", metavar="URL",
                   help="log users in with the tokens of this external issuer instead (type oidc; no embedded "
                        "issuer) (default: none)")
    p.add_argument("--oidc-client", action="append", default=[], metavar="ID[:SECRET]",
                   help="a client of the embedded issuer; without SECRET a public client (PKCE only); repeatable "
                        f"(default: {DEFAULT_OIDC_CLIENT}, public)")
    p.add_argument("--oidc-redirect-uri", action="append", default=[], metavar="URI",
                   help="a redirect URI registered for every client of the embedded issuer; a loopback one matches "
                        f"any port (RFC 8252); repeatable (default: {DEFAULT_REDIRECT_URI})")
    p.add_argument("--oidc-id-claim", default="sub", metavar="CLAIM",
                   help="the token claim whose value is the CS3 username (Reva's default_id_claim; default: sub)")
    p.add_argument("--oidc-audience", default=None, metavar="CLIENT_ID",
                   help="refuse tokens whose aud does not name this client; Reva does not check the audience "
                        "(default: none, as Reva)")
    p.add_argument("--oidc-token-lifetime", type=float, default=300.0, metavar="SECONDS",
                   help="lifetime of the embedded issuer's access and ID tokens (default: 300)")
    p.set_defaults(run=run_devstack)
    return p


DEFAULT_OIDC_CLIENT = "cs3collab-hub"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/hub/oauth_callback"


def oidc_settings(args: argparse.Namespace) -> OIDCSettings | None:
    """The site's OIDC settings from the command line; None when OIDC login is off."""
    if not (args.oidc or args.oidc_issuer):
        return None
    redirects = tuple(args.oidc_redirect_uri) or (DEFAULT_REDIRECT_URI,)
    clients = []
    for value in args.oidc_client or [DEFAULT_OIDC_CLIENT]:
        client_id, _, secret = value.partition(":")
        clients.append(OIDCClient(client_id, secret or None, redirects))
    return OIDCSettings(embedded=args.oidc and not args.oidc_issuer, issuer=args.oidc_issuer,
                        id_claim=args.oidc_id_claim, audience=args.oidc_audience, clients=tuple(clients),
                        token_lifetime=args.oidc_token_lifetime)


def _peer(value: str) -> PeerSite:
    try:
        return parse_peer_arg(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


async def run_devstack(args: argparse.Namespace) -> None:
    """Start the site, print the ready line, serve until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    site = DevstackSite(args.data, domain=args.domain, grpc_port=args.port, http_port=args.http_port,
                        users_file=args.users, token_lifetime=args.token_lifetime,
                        max_upload_size=args.max_upload_size,
                        ocm=OCMSettings(peers=args.peer, providers_file=args.ocm_providers,
                                        public_url=args.public_url, webapp_url=args.ocm_webapp_url,
                                        invite_token_lifetime=args.invite_token_lifetime,
                                        require_accepted_user=args.ocm_require_invite,
                                        extra_scope_methods=tuple(args.ocm_scope_extra),
                                        http_sig=args.ocm_http_sig == "on", signing_key=args.ocm_signing_key,
                                        require_signatures=args.ocm_require_signatures),
                        oidc=oidc_settings(args))
    async with site:
        issuer = f" oidc={site.oidc_issuer.url}" if site.oidc_issuer else ""
        print(f"cs3collab devstack ready: gateway={site.gateway_address} http={site.http_url} "
              f"domain={site.domain}{issuer}", flush=True)
        if args.users is None:
            demo = UserDirectory(site.domain)
            logins = ", ".join(f"{a.user.username}/{a.secret}" for a in demo.accounts)
            print(f"demo logins (username/password): {logins}", flush=True)
        await stop.wait()
    print("cs3collab devstack stopped", file=sys.stderr, flush=True)
