"""What a user gets from ``pip install`` of our wheel, and how it is built.

The sdist and the wheel are built with ``python -m build`` (hatchling and
hatch-jupyter-builder, as pyproject.toml says) from a copy of the sources
as git has them plus the labextension that ``./dev`` built from
labextension/. The wheel is installed with pip into a new virtual environment
that has nothing else, and that environment is then asked what a user would
look at: ``jupyter labextension list`` shows the labextension enabled and OK,
``jupyter server extension list`` shows cs3collab.jupyter enabled and
jupyter_server_ydoc disabled, and a JupyterLab started from it on a devstack
site lists the extension in its page config, serves its remoteEntry and
shows einstein's CS3 home, all without a build step (its PATH is the
environment's bin alone: no node, no npm). A clean copy without the built
labextension and without Node.js fails to build, saying what it needs.

Installing pulls the project's dependencies from the package index with the
CI pins (constraints.txt), so this test needs the same registry access as
``./dev`` itself; pip's cache (the user's, not the test's throwaway HOME)
makes later runs quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
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
    env["PIP_CACHE_DIR"] = pip_cache()
    return env


def pip_cache() -> str:
    """The pip cache of the user running the tests: it outlives each test's HOME."""
    return os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")


def source_copy(dest: Path, *, with_labextension: bool) -> Path:
    """The files git tracks (as a clean clone has them), and optionally the built labextension."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    if with_labextension:
        shutil.copytree(BUILT, dest / "cs3collab" / "labextension")
    return dest


def build_env(path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=path, PIP_CACHE_DIR=pip_cache(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    if not (BUILT / "package.json").is_file():
        pytest.fail("cs3collab/labextension is not built: ./dev test builds it from labextension/")
    source = source_copy(tmp_path_factory.mktemp("source"), with_labextension=True)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], env=build_env(os.environ["PATH"]))
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (built,) = dist.glob("cs3collab-*.whl")
    return built


def test_the_sdist_carries_the_sources_and_the_prebuilt_labextension(dist):
    (sdist,) = dist.glob("cs3collab-*.tar.gz")
    names = tarfile.open(sdist).getnames()
    top = names[0].split("/")[0]
    for needed in ("pyproject.toml", "hatch_build.py", "labextension/package.json", "labextension/src/index.ts",
                   "jupyter-config/jupyter_server_config.d/zz_cs3collab.json", "cs3collab/labextension/static/style.js"):
        assert f"{top}/{needed}" in names, needed
    assert not [n for n in names if "node_modules" in n]


def test_the_version_is_the_labextensions(wheel):
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert wheel.name.startswith(f"cs3collab-{package['version']}-")


def test_without_node_a_clean_copy_fails_saying_what_it_needs(tmp_path):
    source = source_copy(tmp_path / "clean", with_labextension=False)
    bare = tmp_path / "empty-bin"  # PATH has nothing on it: no node, no npm
    bare.mkdir()
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "out"),
                             str(source)], env=build_env(str(bare)), capture_output=True, text=True,
                            timeout=PIP_TIMEOUT)
    assert result.returncode != 0
    assert "Node.js 20 or newer" in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
    assert not list((tmp_path / "out").glob("*.whl"))


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
