"""cs3collab.devstack: an embedded CS3 site (real gRPC gateway + HTTP data
server on a local folder) modelled on Reva. See docs/devstack.md."""

from .site import DevstackSite
from .tokens import Identity, TokenManager

__all__ = ["DevstackSite", "Identity", "TokenManager"]
