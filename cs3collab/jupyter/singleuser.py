"""The single-user server JupyterHub spawns: ``python -m cs3collab.jupyter.singleuser``.

It is JupyterHub's own single-user server (``jupyterhub.singleuser``, the
extension app of JupyterHub 2 and later) with one change: the person the
browser is stays JupyterHub's business (OAuth with the hub, the hub's
cookie, the hub's tokens), but the *identity* that the server answers at
``/api/me`` is the CS3 user the server acts as (the token the hub handed
over in ``CS3COLLAB_TOKEN``). So the collaborators panel and the remote
cursors show "Albert Einstein" of ``cernbox.demo``, exactly as without a
hub, and two sites' users never collide on a bare hub user name.

``cs3collab.jupyter`` loads as in any Jupyter server (its
``jupyter_server_config.d`` file, or ``--ServerApp.jpserver_extensions``).

Modelled on jupyterhub/jupyterhub ``jupyterhub/singleuser/extension.py``
(6.x): ``JupyterHubSingleUser.load_config_file`` sets
``ServerApp.identity_provider_class`` to ``JupyterHubIdentityProvider``
unconditionally and merges it into the server's config at once, so a
subclass of the app sets ours in both after it.
"""

from __future__ import annotations

from jupyterhub.singleuser.extension import JupyterHubIdentityProvider, JupyterHubSingleUser
from traitlets import Instance, default
from traitlets.config import Config

from cs3collab.cs3 import CS3Error
from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.identity import CS3User, user_for


class CS3HubIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub decides who may come in; the answer to "who am I" is the server's CS3 user."""

    connection = Instance(
        CS3CollabConnection,
        help="The server's CS3 identity. Set by the cs3collab extension; default: the extension's, if loaded.",
    )

    @default("connection")
    def _default_connection(self) -> CS3CollabConnection:
        from cs3collab.jupyter.app import shared_connection

        return shared_connection(self.parent)

    @default("updatable_fields")
    def _default_updatable_fields(self) -> list[str]:
        return []  # the identity comes from CS3; nothing is edited in the browser

    async def get_user(self, handler):
        user = await super().get_user(handler)
        if user is None or isinstance(user, CS3User):
            return user  # refused, or already resolved for this request
        try:
            session = await self.connection.session()
        except CS3Error as exc:
            self.log.warning("cs3collab: no CS3 session for this server user=%s error=%s", user.username, exc)
            return user  # the hub's identity: the server still answers, CS3 calls will say what is wrong
        cs3_user = user_for(session.user)
        hub_user = user.hub_user
        cs3_user.hub_user = hub_user  # what JupyterHub's own handlers read
        handler._jupyterhub_user = cs3_user
        return cs3_user


class CS3SingleUser(JupyterHubSingleUser):
    """JupyterHub's single-user server with the CS3 identity (see the module docstring)."""

    @classmethod
    def get_extension_package(cls) -> str:
        return __name__  # this module is the extension package (below), not all of cs3collab

    def load_config_file(self) -> None:
        super().load_config_file()
        # the parent merged its config into the server's already, which is merged back into ours next
        ours = Config({"ServerApp": {"identity_provider_class": CS3HubIdentityProvider}})
        self.config.merge(ours)
        self.serverapp.update_config(ours)


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__, "app": CS3SingleUser}]


def main(argv: list[str] | None = None) -> None:
    CS3SingleUser.launch_instance(argv)


if __name__ == "__main__":
    # run as a module: start the classes of ``cs3collab.jupyter.singleuser``, not copies in ``__main__``
    from cs3collab.jupyter.singleuser import main as _main

    _main()
