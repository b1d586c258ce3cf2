"""Jupyter on CS3: a Jupyter server extension (contents, identity, collaboration bridge).

Enabled by the ``zz_cs3collab.json`` file the package installs into
``etc/jupyter/jupyter_server_config.d``; see :mod:`cs3collab.jupyter.app`.
"""


def _jupyter_server_extension_points() -> list[dict]:
    from cs3collab.jupyter.app import CS3CollabExtension

    return [{"module": "cs3collab.jupyter", "app": CS3CollabExtension}]
