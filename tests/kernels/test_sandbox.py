"""The sandbox a shared kernel runs in: what its code can see and reach, and
what happens when it hits a limit (real bubblewrap, real ipykernel)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from jupyter_client import AsyncKernelManager

import cs3collab
from cs3collab.kernels.sandbox import SANDBOX_KERNEL_NAME, MiB, SandboxKernelSpecManager

from .sandboxed import start_kernel, wait_until  # noqa: F401 - start_kernel is a fixture

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (./dev installs it)")

REPO = Path(cs3collab.__file__).resolve().parents[1]


async def test_a_kernel_runs_code_in_its_workspace(start_kernel):
    kernel = await start_kernel()
    (kernel.workspace / "events.csv").write_text("mass\n125.1\n")
    ran = await kernel.run("import os\nprint(os.getcwd())\nprint(open('events.csv').read().split()[1])\n"
                           "open('result.txt', 'w').write('fitted')")
    assert ran.error is None, ran.evalue
    assert ran.stdout.split() == [str(kernel.workspace), "125.1"]
    assert (kernel.workspace / "result.txt").read_text() == "fitted"
    # state lives on between executions
    await kernel.run("x = 41")
    assert (await kernel.run("print(x + 1)")).stdout.strip() == "42"
    await kernel.km.shutdown_kernel(now=True)
    assert kernel.provisioner.last_exit.message == "the kernel was shut down"


async def test_the_host_file_system_is_invisible(start_kernel, site, tmp_path):
    secret = tmp_path / "other-user" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for kernels")
    kernel = await start_kernel()
    probes = {
        "/etc/passwd": "passwd",
        str(site.data_dir / "jwt-secret"): "devstack state",
        str(REPO / "pyproject.toml"): "repository",
        str(REPO / "cs3collab" / "service" / "app.py"): "service code",
        str(secret): "another folder",
        "/root/.bash_history": "home folder",
    }
    code = "import os\nfor p in %r:\n    print(p, os.path.exists(p))" % list(probes)
    ran = await kernel.run(code)
    assert ran.error is None, ran.evalue
    seen = dict(line.rsplit(" ", 1) for line in ran.stdout.strip().splitlines())
    assert seen == {p: "False" for p in probes}, seen
    assert (await kernel.run("open('/etc/passwd')")).error == "FileNotFoundError"
    # the Python environment is there, read-only
    ran = await kernel.run("import numpy, sys\nopen(sys.prefix + '/pwned', 'w')")
    assert ran.error == "OSError" and "Read-only file system" in ran.evalue


async def test_the_service_environment_does_not_leak_in(start_kernel, monkeypatch):
    monkeypatch.setenv("CS3COLLAB_TEST_SECRET", "token-of-the-service")
    kernel = await start_kernel()
    ran = await kernel.run("import os\nprint(sorted(k for k in os.environ if 'SECRET' in k or 'TOKEN' in k))")
    assert ran.stdout.strip() == "[]"


async def test_no_network_by_default(start_kernel):
    connections = []

    async def accept(reader, writer):
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        kernel = await start_kernel()
        ran = await kernel.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=10)")
        assert ran.error in ("ConnectionRefusedError", "OSError", "TimeoutError"), (ran.error, ran.evalue)
        ran = await kernel.run("import socket\nsocket.getaddrinfo('example.org', 443)")
        assert ran.error == "gaierror"
        assert connections == []
    finally:
        server.close()
        await server.wait_closed()


async def test_a_memory_hog_dies_with_a_knowable_cause_and_another_kernel_carries_on(start_kernel):
    hog = await start_kernel(memory_limit=256 * MiB)
    if "memory" not in hog.provisioner._cgroups:
        pytest.skip("no writable memory cgroup here: the rlimit fallback turns hogs into MemoryError")
    other = await start_kernel(memory_limit=256 * MiB)
    await other.run("y = 'still here'")
    execute = asyncio.ensure_future(hog.run("hog = bytearray(2 * 1024**3)", timeout=120))
    await hog.ended()
    execute.cancel()
    gone = hog.provisioner.last_exit
    assert gone.limit == "memory"
    assert gone.message == "the kernel ran out of memory (limit 256 MiB) and was stopped"
    assert not await hog.km.is_alive()
    assert (await other.run("print(y)")).stdout.strip() == "still here"


async def test_cpu_time_is_limited(start_kernel):
    kernel = await start_kernel(cpu_time_limit=3)
    execute = asyncio.ensure_future(kernel.run("while True: pass", timeout=120))
    await kernel.ended()
    execute.cancel()
    assert kernel.provisioner.last_exit.limit == "cpu_time"
    assert kernel.provisioner.last_exit.message == "the kernel used up its CPU time (limit 3 s) and was stopped"


async def test_a_file_larger_than_the_disk_limit_cannot_be_written(start_kernel):
    kernel = await start_kernel(disk_limit=1 * MiB)
    ran = await kernel.run("open('big.bin', 'wb').write(b'x' * (2 * 1024**2))")
    assert ran.error == "OSError" and "File too large" in ran.evalue
    assert (await kernel.run("print('alive')")).stdout.strip() == "alive"
    assert (kernel.workspace / "big.bin").stat().st_size <= 1 * MiB


async def test_a_fork_bomb_is_contained(start_kernel):
    kernel = await start_kernel(max_processes=40)
    pids = kernel.provisioner._cgroups.get("pids")
    if pids is None:
        pytest.skip("no writable pids cgroup here (RLIMIT_NPROC does not bind uid 0)")
    # the classic shell bomb, started in the background so that the kernel answers
    ran = await kernel.run("import subprocess\nbomb = subprocess.Popen(['/bin/sh', '-c', 'f(){ f | f & }; f'], stderr=subprocess.DEVNULL)\nprint('lit')")
    assert ran.stdout.strip() == "lit"
    await wait_until(lambda: "max 0" not in pids.read("pids.events"), timeout=60, what="the pids limit was hit")
    assert int(pids.read("pids.current")) <= 40
    assert kernel.provisioner.limit_notes() == [
        "the kernel reached its process limit (40): starting more processes was refused"]
    # the machine is unaffected: the host still starts processes at once
    assert subprocess.run(["true"], timeout=30).returncode == 0
    path = pids.path
    await kernel.km.shutdown_kernel(now=True)
    assert not path.exists()  # every process of the bomb was killed with the kernel


async def test_a_shared_runtime_folder_is_refused(tmp_path):
    """Another kernel's connection file (its key) must never be mounted into a sandbox."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "kernel-other.json").write_text("{}")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    km = AsyncKernelManager(kernel_name=SANDBOX_KERNEL_NAME, kernel_spec_manager=SandboxKernelSpecManager(),
                            transport="ipc", ip=str(runtime / "k"), connection_file=str(runtime / "kernel.json"))
    with pytest.raises(RuntimeError, match="must be its own"):
        await km.start_kernel(cwd=str(workspace))
    await km.cleanup_resources()
