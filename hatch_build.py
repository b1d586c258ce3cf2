"""Build hook: say clearly what building from source needs, before npm is tried.

A wheel or sdist of cs3collab carries the JupyterLab extension prebuilt
(``cs3collab/labextension``, built from ``labextension/``). When that output
is missing (a clean clone), hatch-jupyter-builder builds it with npm, which
needs Node.js 20 or newer. Without it, this hook stops the build with words
that say so, instead of a traceback from deep inside the npm step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILT = Path("cs3collab") / "labextension" / "static" / "style.js"
NODE_MAJOR = 20


class NodeRequiredHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name not in ("wheel", "sdist") or version == "editable":
            return
        if os.environ.get("SKIP_JUPYTER_BUILDER") or (Path(self.root) / BUILT).is_file():
            return
        problem = None
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            problem = "node and npm were not found on PATH"
        else:
            found = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
            try:
                major = int(found.lstrip("v").split(".")[0])
            except ValueError:
                major = 0
            if major < NODE_MAJOR:
                problem = f"node {found or '(no version)'} is older than {NODE_MAJOR}"
        if problem:
            raise RuntimeError(
                f"cs3collab: the JupyterLab extension must be built (labextension/ -> cs3collab/labextension) "
                f"and {problem}. Install Node.js {NODE_MAJOR} or newer with npm and build again, "
                "or install a released wheel, which carries the extension prebuilt."
            )
