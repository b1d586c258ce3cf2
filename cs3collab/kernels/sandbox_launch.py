"""The first process of a sandboxed kernel, run on the host just before bubblewrap.

``python -m cs3collab.kernels.sandbox_launch [--cgroup DIR]... [--rlimit NAME=SOFT:HARD]... -- CMD...``

It moves itself into the kernel's cgroups (so bubblewrap and everything the
kernel starts are counted there from their first instruction), sets the
resource limits the sandbox asks for, then replaces itself with ``CMD``
(bubblewrap) through ``execvp``. It is a separate process rather than a
``preexec_fn`` because the service runs threads (gRPC, the store worker) and
``preexec_fn`` is not safe in a threaded parent. It imports only the standard
library, so the extra start-up cost is a few tens of milliseconds.
"""

from __future__ import annotations

import os
import resource
import sys

RLIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "as": resource.RLIMIT_AS,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
    "nofile": resource.RLIMIT_NOFILE,
}


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("sandbox_launch: missing '--' before the command")
    split = argv.index("--")
    options, cmd = argv[:split], argv[split + 1:]
    if not cmd:
        sys.exit("sandbox_launch: no command")
    it = iter(options)
    for option in it:
        value = next(it, None)
        if value is None:
            sys.exit(f"sandbox_launch: {option} needs a value")
        if option == "--cgroup":
            # joining a cgroup: write our pid to its cgroup.procs (cgroup v1)
            with open(os.path.join(value, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        elif option == "--rlimit":
            name, _, limits = value.partition("=")
            soft, _, hard = limits.partition(":")
            resource.setrlimit(RLIMITS[name], (int(soft), int(hard or soft)))
        else:
            sys.exit(f"sandbox_launch: unknown option {option}")
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
