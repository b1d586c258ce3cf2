"""What a user gets from ``pip install`` of our wheel.

The wheel is built from the sources as they are (with the labextension that
``./dev`` built from labextension/), installed with pip into a new virtual
environment that has nothing else, and that environment is then asked what
a user would look at: ``jupyter labextension list`` shows the labextension
enabled and OK, ``jupyter server extension list`` shows cs3collab.jupyter
enabled and jupyter_server_ydoc disabled, and a JupyterLab started from it
on a devstack site lists the extension in its page config, serves its
remoteEntry and shows einstein's CS3 home, all without a build step (its
PATH is the environment's bin alone: no node, no npm).

Installing pulls the project's dependencies from the package index with the
CI pins (constraints.txt), so this test needs the same registry access as
``./dev`` itself; pip's cache makes later runs quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import anyio
import httpx
import pytest

from cs3collab.demo import DEMO_USERS
from tests.support.processes import devstack, run_process

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "cs3collab" / "labextension"
SHARE = "share/jupyter/labextensions/@cs3collab/labextension"
PIP_TIMEOUT = 900
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.timeout(PIP_TIMEOUT + 120)


def run(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = PIP_TIMEOUT) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return ANSI.sub("", result.stdout + result.stderr)


def clean_env(venv: Path) -> dict[str, str]:
    """Only the new environment's bin and the system's basics on PATH: no node, no npm."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = str(venv / "bin")  # no node, no npm: nothing can be built
    env["HOME"] = str(venv.parent / "home")
    env["JUPYTER_CONFIG_DIR"] = str(venv.parent / "home" / "jupyter-config")
    env["JUPYTER_DATA_DIR"] = str(venv.parent / "home" / "jupyter-data")
    env["JUPYTER_RUNTIME_DIR"] = str(venv.parent / "home" / "jupyter-runtime")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (BUILT / "package.json").is_file():
        pytest.fail("cs3collab/labextension is not built: ./dev test builds it from labextension/")
    # build from a copy of what the wheel is made of, so the work tree gets no build/ or egg-info
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "cs3collab", source / "cs3collab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "jupyter-config", source / "jupyter-config")
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)])
    (built,) = out.glob("cs3collab-*.whl")
    return built


def test_the_wheel_carries_the_prebuilt_labextension(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if f"/data/{SHARE}/" in n]
    assert any(n.endswith(f"{SHARE}/package.json") for n in data), names
    assert any(re.search(rf"{re.escape(SHARE)}/static/remoteEntry\.[0-9a-f]+\.js$", n) for n in data), data
    # and none of the sources or node_modules behind it
    assert not [n for n in names if "node_modules" in n or n.endswith(".ts")]


LAB_READY = re.compile(r"(?P<url>http://127\.0\.0\.1:\d+)/lab")


async def test_pip_install_in_a_fresh_environment_gives_jupyterlab_with_the_extension(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    env = clean_env(venv)
    python = str(venv / "bin" / "python")
    await anyio.to_thread.run_sync(
        lambda: run([python, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)], env=env)
    )

    labextensions = run([python, "-m", "jupyter", "labextension", "list"], env=env)
    line = next((l for l in labextensions.splitlines() if "@cs3collab/labextension" in l), "")
    assert re.search(r"enabled\b.*\bOK\b", line), labextensions

    servers = run([python, "-m", "jupyter", "server", "extension", "list"], env=env)
    assert re.search(r"cs3collab\.jupyter\s+enabled", servers), servers
    assert re.search(r"jupyter_server_ydoc\s+disabled", servers), servers

    # JupyterLab from that environment, on a real CS3 site, serves the extension as it is: nothing to build
    token = "wheel-test"
    async with devstack(tmp_path / "site") as site:
        lab_args = [
            python, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={token}",
            f"--CS3CollabConnection.gateway={site.gateway}",
            "--CS3CollabConnection.username=einstein", f"--CS3CollabConnection.password={DEMO_USERS['einstein']}",
        ]
        if os.geteuid() == 0:
            lab_args.append("--allow-root")
        async with run_process(lab_args, LAB_READY, env=env) as lab:
            base = lab.ready["url"]
            headers = {"Authorization": f"token {token}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                page = await http.get("/lab")
                assert page.status_code == 200, page.text[:2000]
                config = json.loads(
                    re.search(r'id="jupyter-config-data"[^>]*>\s*(\{.*?\})\s*</script>', page.text, re.S).group(1)
                )
                ours = [e for e in config["federated_extensions"] if e["name"] == "@cs3collab/labextension"]
                assert ours, config["federated_extensions"]
                assert "@cs3collab/labextension" not in config.get("disabled_extensions", [])
                remote = await http.get(f"/lab/extensions/@cs3collab/labextension/{ours[0]['load']}")
                assert remote.status_code == 200 and "@cs3collab/labextension" in remote.text
                # and the contents are einstein's CS3 home, with "Shared with me"
                home = await http.get("/api/contents", params={"content": 1})
                assert home.status_code == 200, home.text
                assert "Shared with me" in [item["name"] for item in home.json()["content"]]
