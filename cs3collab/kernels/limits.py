"""Limits of a sandboxed kernel: the settings (``KernelSandbox``), the cgroups
that enforce memory and processes, and how a kernel ended (``KernelExit``).

The provisioner (sandbox.py) applies them; docs/execution.md ("Limits") says
which mechanism applies where.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from traitlets import Bool, Dict, Int, List, Unicode
from traitlets.config import LoggingConfigurable

log = logging.getLogger("cs3collab.kernels.sandbox")

GiB = 1024**3
MiB = 1024**2


def describe_bytes(n: int) -> str:
    """``1073741824`` → ``"1 GiB"``, for messages people read."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


class KernelSandbox(LoggingConfigurable):
    """Limits and visibility of every sandboxed kernel (``c.KernelSandbox.*``)."""

    bwrap = Unicode(
        "bwrap", config=True,
        help="The bubblewrap executable (Debian package `bubblewrap`), a name looked up on PATH or an absolute path. Default: bwrap.",
    )
    memory_limit = Int(
        GiB, config=True,
        help="Most memory one kernel (with everything it starts, /tmp included) may use, in bytes. "
             "Enforced by the cgroup v1 memory controller when writable (the kernel is killed and the "
             "room told it ran out of memory), else by RLIMIT_AS per process (allocations fail with "
             "MemoryError). 0 = no limit. Default: 1 GiB.",
    )
    cpu_time_limit = Int(
        3600, config=True,
        help="CPU seconds each process of a kernel may use (RLIMIT_CPU; the kernel is stopped when it "
             "uses them up and the room told why). 0 = no limit. Default: 3600 s.",
    )
    max_processes = Int(
        64, config=True,
        help="Most processes and threads alive at once in one kernel's sandbox, the kernel and "
             "bubblewrap included (cgroup v1 pids.max when writable; else RLIMIT_NPROC, which does "
             "not bind uid 0). A fork bomb gets 'Resource temporarily unavailable'. 0 = no limit. "
             "Default: 64.",
    )
    disk_limit = Int(
        GiB, config=True,
        help="Largest file a kernel may write, in bytes (RLIMIT_FSIZE: a bigger write fails with "
             "'File too large'); also the most a workspace may hold when it is written back to CS3. "
             "0 = no limit. Default: 1 GiB.",
    )
    tmp_size = Int(
        256 * MiB, config=True,
        help="Size of the kernel's private /tmp (a tmpfs; it counts towards memory_limit), in bytes. "
             "Default: 256 MiB.",
    )
    allow_network = Bool(
        False, config=True,
        help="Let kernels use the host's network (no network namespace of their own; /etc/resolv.conf, "
             "/etc/hosts and /etc/ssl are then visible read-only). Default: False (the kernel has only "
             "a loopback of its own).",
    )
    extra_ro_binds = List(
        Unicode(), config=True,
        help="More host paths made visible read-only at the same path inside every sandbox (for example "
             "a site-wide software stack such as /cvmfs). Default: none.",
    )
    extra_env = Dict(
        value_trait=Unicode(), key_trait=Unicode(), config=True,
        help="More environment variables for every kernel (the kernel gets a fresh environment: PATH, "
             "HOME=/tmp, LANG, matplotlib inline, one BLAS thread; nothing of the service's). Default: none.",
    )
    use_cgroups = Bool(
        True, config=True,
        help="Enforce memory_limit and max_processes with cgroup v1 controllers (memory, pids) when "
             "their folders under cgroup_root are writable; False = rlimits only. Default: True.",
    )
    cgroup_root = Unicode(
        "/sys/fs/cgroup", config=True,
        help="Where the cgroup v1 controllers are mounted (one folder per controller). Each kernel gets "
             "a child cgroup below the service's own. Default: /sys/fs/cgroup.",
    )


@dataclass(frozen=True)
class KernelExit:
    """How and why a sandboxed kernel ended.

    ``limit`` is the limit it hit (``"memory"``, ``"cpu_time"``) or None;
    ``message`` says it in words for the room, e.g. "the kernel ran out of
    memory (limit 1 GiB) and was stopped".
    """

    exit_code: int | None
    signal: int | None
    limit: str | None
    message: str


def own_cgroup(root: Path, controller: str) -> Path | None:
    """The folder of this process's cgroup for a v1 ``controller``, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = root / controller / path.lstrip("/")
            return folder if folder.is_dir() else None
    return None


class Cgroup:
    """One child cgroup of one v1 controller, made for one kernel launch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def make(cls, root: Path, controller: str, name: str) -> Cgroup | None:
        parent = own_cgroup(root, controller)
        if parent is None or not os.access(parent, os.W_OK):
            return None
        path = parent / name
        try:
            path.mkdir()
        except OSError as e:
            log.warning("cgroup unavailable controller=%s path=%s error=%r", controller, path, e)
            return None
        return cls(path)

    def write(self, name: str, value: str) -> bool:
        try:
            (self.path / name).write_text(value)
            return True
        except OSError:
            return False

    def read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except OSError:
            return ""

    def pids(self) -> list[int]:
        return [int(p) for p in self.read("cgroup.procs").split()]

    def kill_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def remove(self) -> None:
        """Kill what is left and remove the folder (it can only go once empty)."""
        for _ in range(50):
            self.kill_all()
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    break
            await asyncio.sleep(0.1)  # the killed processes are being reaped: nothing to await
        log.warning("cgroup left behind path=%s", self.path)
