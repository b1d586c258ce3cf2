"""The labextension's own unit tests (vitest, ``npm test`` in labextension/):
the pure logic of the presence bar, the status chip, the RAW message parsing
and the version history client; and its lint (ESLint). Run here so that
``./dev test`` runs them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def test_labextension_unit_tests_pass():
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required (Node.js 20+): ./dev test installs the labextension's dependencies with it")
    if not (LABEXTENSION / "node_modules" / "vitest").is_dir():
        pytest.fail("labextension/node_modules is missing: run ./dev setup (npm ci in labextension/)")
    result = subprocess.run(
        [npm, "test", "--silent"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, f"npm test failed:\n{result.stdout}\n{result.stderr}"
    assert "passed" in result.stdout


def test_labextension_typescript_is_lint_clean():
    """ESLint with typescript-eslint's recommended rules (eslint.config.mjs)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required (Node.js 20+)")
    result = subprocess.run(
        [npm, "run", "lint", "--silent"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, f"eslint found problems:\n{result.stdout}\n{result.stderr}"
