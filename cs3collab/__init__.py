"""cs3collab: real-time collaboration for Jupyter notebooks stored in CS3 storage."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cs3collab")  # set once, in labextension/package.json (pyproject.toml says how)
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (labextension/, built into cs3collab/labextension):
    where ``jupyter labextension develop`` links it from. A wheel installs it under
    ``share/jupyter/labextensions/@cs3collab/labextension`` (pyproject data-files)."""
    return [{"src": "labextension", "dest": "@cs3collab/labextension"}]
