"""The service and its document worker start in a fresh interpreter each
(a restart, a worker respawn). rfc3987_syntax, which jsonschema imports when
installed, builds ~35 Lark parsers at import: 1.6 s of CPU quiet, and a
restart under load missed its 120 s start-up. The service's processes go
without it, and notebook validation still works."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import cs3collab.service.app, cs3collab.service.worker
import nbformat
from nbformat.v4 import new_notebook
assert sys.modules.get("rfc3987_syntax") is None, "rfc3987_syntax was imported"
nbformat.validate(new_notebook())
broken = new_notebook()
broken["cells"].append({"cell_type": "code", "source": 42})  # a source must be text
try:
    nbformat.validate(broken)
except nbformat.ValidationError:
    print("validation works")
"""


def test_the_service_does_without_rfc3987_syntax_and_still_validates_notebooks():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "validation works"
