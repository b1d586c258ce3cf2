"""The ``cs3collab-sandbox`` kernel provisioner: a Jupyter kernel inside bubblewrap.

Kernels run code from people who have no account at this site, so each one
runs in a sandbox rather than as the service's user. This module plugs into
jupyter_client's supported extension point, the kernel provisioner
(``jupyter_client.provisioning``, entry point group
``jupyter_client.kernel_provisioners``): ``SandboxProvisioner`` is a
``LocalProvisioner`` whose launch command is wrapped in ``bwrap`` (Debian's
``bubblewrap``) and whose process is placed in cgroups with limits.

What the kernel sees (see docs/execution.md, "The sandbox"):

- a new mount namespace with only: the Python environment read-only (the
  kernel's venv and the base Python it points to, plus ``/usr`` for the C
  libraries), the kernel's working folder (the workspace, read-write), its
  runtime folder (connection file and the ``ipc`` sockets, read-write), a
  private ``/tmp`` (tmpfs, bounded), a fresh ``/proc`` and a minimal
  ``/dev``. No ``/etc`` (so no ``/etc/passwd``), no service state, no home
  folders;
- new user, pid, ipc, uts, cgroup and network namespaces (the network only
  when ``KernelSandbox.allow_network`` is false, the default: the kernel then
  has only its own loopback, which is why the kernel's ZMQ transport must be
  ``ipc``); all capabilities dropped; ``--new-session`` (no terminal
  injection) and ``--die-with-parent``;
- limits: memory and number of processes through cgroup v1 controllers when
  they are writable (``memory.limit_in_bytes``, ``pids.max``), else through
  rlimits (``RLIMIT_AS``; ``RLIMIT_NPROC``, which does not bind uid 0); CPU
  time (``RLIMIT_CPU``), largest file written (``RLIMIT_FSIZE``), no core
  dumps.

When the kernel dies, ``SandboxProvisioner.last_exit`` says why in words
(``KernelExit.message``): which limit it hit, or its exit status or signal.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.provisioning import LocalProvisioner

from .limits import GiB, MiB, Cgroup, KernelExit, KernelSandbox, describe_bytes  # noqa: F401 - re-exported

log = logging.getLogger("cs3collab.kernels.sandbox")

PROVISIONER_NAME = "cs3collab-sandbox"
MAX_SOCKET_PATH = 108  # sizeof(sockaddr_un.sun_path) on Linux, the NUL included


class SandboxProvisioner(LocalProvisioner):
    """A ``LocalProvisioner`` that runs the kernel inside bubblewrap with limits.

    The kernel manager must use ``transport = "ipc"`` (unless
    ``KernelSandbox.allow_network``) with an absolute ``ip`` (the socket path
    prefix) and its connection file in the kernel's own runtime folder
    (nothing else in it, not inside the workspace); the working folder comes
    as ``cwd=`` to ``start_kernel``. Both folders are mounted read-write at the
    same paths inside the sandbox.
    """

    last_exit: KernelExit | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sandbox = KernelSandbox(parent=self)
        self._cgroups: dict[str, Cgroup] = {}
        self._workdir: str | None = None
        self._oom_before = 0
        self._stopping = False  # a shutdown, restart or kill was asked for: its end is no accident
        self._pids_hits = 0

    # -- launch ------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        cfg = self.sandbox
        if km is not None and km.transport != "ipc" and not cfg.allow_network:
            raise RuntimeError("a sandboxed kernel has no network: its kernel manager must use transport='ipc'")
        bwrap = shutil.which(cfg.bwrap)
        if bwrap is None:
            raise RuntimeError(f"bubblewrap ({cfg.bwrap}) is not installed: install the Debian package 'bubblewrap'")
        workdir = kwargs.get("cwd")
        if not workdir or not Path(workdir).is_absolute() or not Path(workdir).is_dir():
            raise RuntimeError("a sandboxed kernel needs its working folder as an absolute cwd= that exists")
        kwargs = await super().pre_launch(**kwargs)
        self._workdir = str(workdir)
        runtime = set()
        if km is not None:
            runtime.add(str(Path(km.connection_file).resolve().parent))
            if km.transport == "ipc":
                if not os.path.isabs(km.ip):
                    raise RuntimeError("with transport='ipc' the kernel manager's ip must be an absolute socket path prefix")
                if len(os.fsencode(km.ip)) + len("-65535") >= MAX_SOCKET_PATH:
                    raise RuntimeError(f"the kernel's ipc socket path {km.ip!r} is too long for a unix socket "
                                       f"(at most {MAX_SOCKET_PATH - 7} bytes): use a shorter runtime folder")
                runtime.add(str(Path(km.ip).parent))
        self._check_runtime(km, Path(workdir), runtime)
        self.last_exit = None
        self._stopping = False
        await self._make_cgroups()
        cmd = self._wrap(bwrap, kwargs.pop("cmd"), Path(workdir), sorted(runtime))
        kwargs["cmd"] = cmd
        kwargs["env"] = self._kernel_env()
        # bubblewrap itself starts from /, the kernel from its workspace (--chdir)
        kwargs["cwd"] = "/"
        return kwargs

    @staticmethod
    def _check_runtime(km: Any, workdir: Path, runtime: set[str]) -> None:
        """The runtime folder is mounted read-write into the sandbox: it must
        hold nothing but this kernel's connection file and sockets (another
        kernel's connection file would give its key away), and lie outside the
        workspace (which is written back to CS3)."""
        if km is None:
            return
        own = {Path(km.connection_file).name}
        prefix = Path(km.ip).name if km.transport == "ipc" else None
        for folder in map(Path, runtime):
            if folder == workdir or workdir in folder.parents:
                raise RuntimeError("the kernel's runtime folder must not lie inside its workspace")
            for entry in folder.iterdir():
                if entry == workdir or entry in workdir.parents:
                    continue  # the kernel's own workspace may live in its runtime folder
                if entry.name not in own and not (prefix and entry.name.startswith(prefix + "-")):
                    raise RuntimeError(f"the kernel's runtime folder {folder} must be its own: it holds {entry.name!r}")

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        try:
            info = await super().launch_kernel(cmd, **kwargs)
        except BaseException:
            await self._remove_cgroups()
            raise
        self.cwd = self._workdir
        log.info("sandboxed kernel started kernel=%s pid=%s workspace=%s limits=%s",
                 self.kernel_id, self.pid, self._workdir, self.enforcement())
        return info

    def _wrap(self, bwrap: str, cmd: list[str], workdir: Path, runtime: list[str]) -> list[str]:
        cfg = self.sandbox
        args = [bwrap, "--unshare-all"]
        if cfg.allow_network:
            args.append("--share-net")
        args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        # jupyter_client tells ipykernel its parent's pid, which means nothing in the kernel's pid
        # namespace (its parent is bubblewrap, pid 1 there): --die-with-parent does that job
        args += ["--unsetenv", "JPY_PARENT_PID"]
        # a private /tmp first: what is bound below may itself live under the host's /tmp
        # (a checkout and its venv in /tmp, a test's workspace), and a later tmpfs would hide it
        args += ["--proc", "/proc", "--dev", "/dev"]
        if cfg.tmp_size > 0:
            args += ["--size", str(cfg.tmp_size)]
        args += ["--tmpfs", "/tmp"]
        # the Python environment, read-only: /usr (C libraries), the venv, its base Python
        for top in ("bin", "lib", "lib32", "lib64", "sbin"):
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        ro = ["/usr", *self._python_roots(cmd), *cfg.extra_ro_binds]
        if cfg.allow_network:
            ro += [p for p in ("/etc/resolv.conf", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates") if os.path.exists(p)]
        for path in dict.fromkeys(ro):
            args += ["--ro-bind", path, path]
        for path in runtime:
            args += ["--bind", path, path]
        args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
        args += ["--", *cmd]
        launch = [sys.executable, "-m", "cs3collab.kernels.sandbox_launch"]
        for group in self._cgroups.values():
            launch += ["--cgroup", str(group.path)]
        for name, soft, hard in self._rlimits():
            launch += ["--rlimit", f"{name}={soft}:{hard}"]
        return [*launch, "--", *args]

    @staticmethod
    def _python_roots(cmd: list[str]) -> list[str]:
        """The folders the kernel's Python lives in: its environment (venv)
        and the base installation the venv points to."""
        roots = []
        exe = Path(shutil.which(cmd[0]) or cmd[0])
        env = exe.parent.parent  # <prefix>/bin/python
        roots.append(str(env))
        cfg = env / "pyvenv.cfg"
        if cfg.exists():
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    roots.append(str(Path(value.strip()).parent))
        real = exe.resolve().parent.parent
        roots.append(str(real))
        return [r for r in dict.fromkeys(roots) if r not in ("/usr", "/")]

    def _kernel_env(self) -> dict[str, str]:
        """A fresh environment: nothing of the service's (tokens, secrets) leaks in,
        whatever environment the kernel manager was given."""
        python_bin = str(Path(self.kernel_spec.argv[0]).parent) if self.kernel_spec else "/usr/bin"
        return {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # no debugger warning in everyone's first cell
            **self.sandbox.extra_env,
        }

    def _rlimits(self) -> list[tuple[str, int, int]]:
        cfg = self.sandbox
        inf = resource.RLIM_INFINITY
        limits = [("core", 0, 0)]
        if cfg.cpu_time_limit > 0:
            # the soft limit sends SIGXCPU (the kernel stops, the cause is knowable); the hard one SIGKILL
            limits.append(("cpu", cfg.cpu_time_limit, cfg.cpu_time_limit + 5))
        if cfg.disk_limit > 0:
            limits.append(("fsize", cfg.disk_limit, cfg.disk_limit))
        if cfg.memory_limit > 0 and "memory" not in self._cgroups:
            limits.append(("as", cfg.memory_limit, cfg.memory_limit))
        if cfg.max_processes > 0 and "pids" not in self._cgroups:
            limits.append(("nproc", cfg.max_processes, cfg.max_processes))
        return [(n, s, h if h else inf) for n, s, h in limits]

    def enforcement(self) -> str:
        """How each limit is enforced for this kernel, as ``key=value`` words for logs."""
        cfg = self.sandbox
        memory = "off" if cfg.memory_limit <= 0 else ("cgroup" if "memory" in self._cgroups else "rlimit-as")
        procs = "off" if cfg.max_processes <= 0 else ("cgroup" if "pids" in self._cgroups else "rlimit-nproc")
        return (f"memory:{memory}:{describe_bytes(cfg.memory_limit)},processes:{procs}:{cfg.max_processes},"
                f"cpu:{cfg.cpu_time_limit}s,file:{describe_bytes(cfg.disk_limit)},network:{cfg.allow_network}")

    async def _make_cgroups(self) -> None:
        await self._remove_cgroups()
        cfg = self.sandbox
        if not cfg.use_cgroups:
            return
        name = f"cs3collab-kernel-{self.kernel_id}-{uuid.uuid4().hex[:8]}"
        root = Path(cfg.cgroup_root)
        if cfg.memory_limit > 0:
            group = Cgroup.make(root, "memory", name)
            if group is not None:
                if group.write("memory.limit_in_bytes", str(cfg.memory_limit)):
                    group.write("memory.memsw.limit_in_bytes", str(cfg.memory_limit))  # no swapping around it
                    self._cgroups["memory"] = group
                else:
                    await group.remove()
        if cfg.max_processes > 0:
            group = Cgroup.make(root, "pids", name)
            if group is not None:
                if group.write("pids.max", str(cfg.max_processes)):
                    self._cgroups["pids"] = group
                else:
                    await group.remove()
        self._oom_before = self._oom_kills()
        self._pids_hits = 0

    async def _remove_cgroups(self) -> None:
        groups, self._cgroups = self._cgroups, {}
        for group in groups.values():
            await group.remove()

    def _oom_kills(self) -> int:
        group = self._cgroups.get("memory")
        if group is None:
            return 0
        for line in group.read("memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        # older kernels: count hits of the limit instead
        return int(group.read("memory.failcnt") or 0)

    def limit_notes(self) -> list[str]:
        """Limits the running kernel ran into since the last call, in words
        for the room (the kernel survived them): the process limit (fork
        refused). The host may call it after each execution."""
        notes = []
        group = self._cgroups.get("pids")
        if group is not None:
            hits = 0
            for line in group.read("pids.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "max" and value.strip().isdigit():
                    hits = int(value)
            if hits > self._pids_hits:
                self._pids_hits = hits
                notes.append(f"the kernel reached its process limit ({self.sandbox.max_processes}): "
                             "starting more processes was refused")
        return notes

    # -- exit --------------------------------------------------------------

    @staticmethod
    def _signal_status(process: Any, status: int) -> int:
        """bubblewrap reports a kernel killed by signal N as exit status 128 + N;
        give it back as Popen does for a local kernel (-N), so that callers
        reading the status (jupyter_client, the kernel host) see a signal."""
        if 128 < status <= 128 + 64:
            status = -(status - 128)
            process.returncode = status
        return status

    async def poll(self) -> int | None:
        process = self.process
        ret = await super().poll()
        if ret is not None and process is not None:
            ret = self._signal_status(process, ret)
        if ret is not None and process is not None and self.last_exit is None:
            self.last_exit = self._explain(ret)
            level = logging.INFO if ret == 0 or self._stopping else logging.WARNING
            log.log(level, "sandboxed kernel ended kernel=%s exit=%s signal=%s limit=%s reason=%r",
                    self.kernel_id, self.last_exit.exit_code, self.last_exit.signal, self.last_exit.limit,
                    self.last_exit.message)
        return ret

    async def wait(self) -> int | None:
        process = self.process
        ret = await super().wait()
        if process is not None and self.last_exit is None and ret is not None:
            self.last_exit = self._explain(ret)
        return ret

    async def shutdown_requested(self, restart: bool = False) -> None:
        self._stopping = True
        await super().shutdown_requested(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        self._stopping = True
        await super().terminate(restart=restart)

    def _explain(self, status: int) -> KernelExit:
        """Why the kernel ended: a limit, a signal, or its exit status.

        ``status`` is the kernel's exit status, or -N when signal N killed it
        (``_signal_status``).
        """
        cfg = self.sandbox
        sig = -status if status < 0 else None
        if self._oom_kills() > self._oom_before:
            return KernelExit(status, sig, "memory",
                              f"the kernel ran out of memory (limit {describe_bytes(cfg.memory_limit)}) and was stopped")
        if sig == signal.SIGXCPU:
            return KernelExit(status, sig, "cpu_time",
                              f"the kernel used up its CPU time (limit {cfg.cpu_time_limit} s) and was stopped")
        if self._stopping:
            return KernelExit(status, sig, None, "the kernel was shut down")
        if sig == signal.SIGKILL and "memory" not in self._cgroups and cfg.memory_limit > 0:
            return KernelExit(status, sig, None, "the kernel was killed (perhaps the machine ran out of memory)")
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            return KernelExit(status, sig, None, f"the kernel was stopped by {name}")
        if status == 0:
            return KernelExit(status, None, None, "the kernel shut down")
        return KernelExit(status, None, None, f"the kernel exited with status {status}")

    async def kill(self, restart: bool = False) -> None:
        self._stopping = True
        await super().kill(restart=restart)
        for group in self._cgroups.values():
            group.kill_all()

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        await self._remove_cgroups()

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info["workspace"] = self._workdir
        return info


def sandbox_kernel_spec(python: str | None = None, *, display_name: str = "Python 3 (shared, sandboxed)") -> KernelSpec:
    """A python3 kernel spec that selects the ``cs3collab-sandbox`` provisioner.

    Args:
        python: the interpreter of the kernel's environment (it needs
            ipykernel; numpy, pandas and matplotlib for the demo); default:
            the service's own interpreter.
        display_name: the name JupyterLab shows.

    The host uses it instead of looking up installed kernel specs, through
    ``SandboxKernelSpecManager`` (kernel name ``SANDBOX_KERNEL_NAME``).
    Interrupts go as a control message (``interrupt_mode: message``): a
    signal to bubblewrap's process group would not reach a kernel in its own
    session and pid namespace.
    """
    exe = python or sys.executable
    return KernelSpec(
        argv=[exe, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name=display_name,
        language="python",
        interrupt_mode="message",
        env={},
        metadata={"debugger": False, "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": {}}},
    )


SANDBOX_KERNEL_NAME = "cs3collab-python3"


class SandboxKernelSpecManager(KernelSpecManager):
    """Knows one more kernel name, ``cs3collab-python3``: ``sandbox_kernel_spec()``
    of the service's interpreter. Other names are looked up as usual::

        km = AsyncKernelManager(kernel_name=SANDBOX_KERNEL_NAME,
                                kernel_spec_manager=SandboxKernelSpecManager(),
                                transport="ipc", ip=..., connection_file=...)
    """

    def get_kernel_spec(self, kernel_name: str, *args: Any, **kwargs: Any) -> KernelSpec:
        if kernel_name == SANDBOX_KERNEL_NAME:
            return sandbox_kernel_spec()
        return super().get_kernel_spec(kernel_name, *args, **kwargs)
