"""Where a service process spends its time during a benchmark window.

``sampling(pids, seconds, out)`` runs py-spy (``pip install py-spy``; not one of
the project's dependencies) against each process for the window, without
pausing it (``--nonblocking``), and writes py-spy's raw (collapsed) stacks to
``out/<label>-<pid>.txt``. ``summary(path)`` turns one such file into the two
tables one reads first: the functions that were on the CPU (self) and the ones
under which the time went (inclusive), as shares of the busy samples: py-spy
cannot tell a thread blocked in a system call without pausing the process, so
stacks that end in a known wait (the event loop's select, an idle pool thread)
are counted apart as idle.

Usage beside a benchmark: ``replica_bench.py --profile DIR``; by hand::

    .venv/bin/python benchmarks/profiling.py DIR/one-100-12345.txt [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path


def py_spy() -> str | None:
    here = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def sampling(pids: dict[str, int], seconds: float, out: Path | None, rate: int = 100) -> AsyncIterator[None]:
    """Sample each ``label -> pid`` for ``seconds`` while the body runs (nothing when ``out`` is None)."""
    spy = py_spy() if out is not None else None
    if out is not None and spy is None:
        print("  (no py-spy found: pip install py-spy; not profiling)", flush=True)
    procs = []
    if spy is not None:
        out.mkdir(parents=True, exist_ok=True)
        for label, pid in pids.items():
            procs.append(await asyncio.create_subprocess_exec(
                spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
                "--nonblocking", "--format", "raw", "--output", str(out / f"{label}-{pid}.txt"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)
            if proc.returncode is None:
                proc.kill()


def _frame_name(frame: str) -> str:
    # py-spy raw frames read "function (path/to/file.py:line)": keep function and file
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


# leaves of stacks that wait rather than run (the frame's function name)
IDLE = frozenset({"EpollSelector.select", "_PollLikeSelector.select", "select", "_worker", "wait",
                  "Condition.wait", "Thread._wait_for_tstate_lock", "Queue.get", "SimpleQueue.get"})


def summary(path: Path, top: int = 20) -> str:
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        if frames[-1].partition(" (")[0] in IDLE:
            idle += n
            continue
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            under[name] += n
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} busy samples ({idle} more waiting); shares of the busy ones",
             "  on the CPU (self):"]
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines.append("  under (inclusive):")
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in under.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    for path in args.files:
        print(summary(path, args.top))


if __name__ == "__main__":
    main()
