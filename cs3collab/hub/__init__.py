"""JupyterHub integration: log in to the hub with CS3 credentials.

``CS3Authenticator`` (entry point ``cs3auth`` in ``jupyterhub.authenticators``)
checks a user's CS3 username and password with the site's gateway (``login =
"basic"``), or sends the user to the site's identity provider and logs her in
at the gateway with its token (``login = "oidc"``), keeps the CS3 access token
in the hub's encrypted auth state, renews it before it expires, and hands it
to the user's single-user server (``CS3COLLAB_TOKEN``), where
``cs3collab.jupyter`` uses it. Imports the CS3 client (and JupyterHub,
oauthenticator) only: it sits beside ``cs3collab.jupyter``, above
``cs3collab.cs3``.
"""

from cs3collab.hub.authenticator import CS3Authenticator

__all__ = ["CS3Authenticator"]
