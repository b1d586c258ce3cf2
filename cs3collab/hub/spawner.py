"""The demo's spawner: JupyterHub's ``SimpleLocalProcessSpawner`` without Python in the forked child.

``SimpleLocalProcessSpawner`` makes the user's home and changes into it in a
``preexec_fn``, Python code that runs in the forked hub process before the
server's command starts. The hub holds gRPC channels (the CS3 authenticator's
client), and a fork while gRPC's threads run can leave that child stuck before
it ever runs the command: the server "never shows up". This spawner makes
the home folder in the hub and starts the process in it with Popen's ``cwd``, so the child runs no Python
before ``exec`` (and Python can use vfork).

Like its parent: no system accounts and no isolation between users, for a
demo on one's own machine only (docs/deployment.md: what a site uses).
"""

from __future__ import annotations

import os

from jupyterhub.spawner import SimpleLocalProcessSpawner


class LocalSpawner(SimpleLocalProcessSpawner):
    """Each user's server a local process in their own home folder (see the module docstring)."""

    def make_preexec_fn(self, name):
        return None

    async def start(self):
        os.makedirs(self.home_dir, 0o755, exist_ok=True)  # what the parent's preexec_fn did in the child
        self.popen_kwargs = {**self.popen_kwargs, "cwd": self.home_dir}
        return await super().start()
