"""Shared execution, the service's side: who may use a notebook's kernel, and
its runs written into the notebook's room.

:class:`SharedExecution` joins the :class:`~cs3collab.kernels.host.KernelHost`
(the kernels) to the room registry (the documents):

* a participant's kernel channel (:class:`KernelParticipant`) is a
  :class:`~cs3collab.service.room.Participant` of its own, authenticated and
  resolved exactly like a room participant (CS3 token at home, OCM share
  credentials from another site) and re-checked on the same timer: a
  removed share closes that channel (1003 ``access_revoked``), a changed
  role applies at once; the kernel carries on for the others;
* a run that names a cell (JupyterLab's ``metadata.cellId``) is written into
  the room by the service, as server-authored Y changes: outputs cleared at
  its start, each output as it comes (stream text appended to the running
  stream), ``execution_count``, ``execution_state``, and who ran it in the
  cell's metadata (``metadata.cs3collab.execution = {by, site, at}``). The
  room is opened for that if nobody has it open, so a run's outputs land
  even when the tab that asked has gone; the runner counts as the author of
  those changes (their session saves them);
* every participant of the room hears, as RAW JSON messages, who runs what
  (``cs3collab:execution``) and what happened to the kernel
  (``cs3collab:kernel``: started, restarted, died, culled), in words;
* with replicas (``--redis-url``) a notebook's kernel runs on the replica
  that started it; the others relay their participants' channels and REST
  calls to it (:attr:`SharedExecution.relay`,
  :mod:`cs3collab.service.kernel_relay`), access still checked where each
  participant is connected.

The kernel's CS3 authority is a token scoped to the shared resource
(:func:`cs3collab.kernels.authority.scoped_session`), never a participant's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pycrdt import Array, Map, Text

from cs3collab.cs3 import CS3Client, CS3Error, NotFound, PermissionDenied, Session, Unauthenticated
from cs3collab.cs3.refs import format_resource_id
from cs3collab.kernels.authority import scoped_session
from cs3collab.kernels.host import Execution, KernelError, KernelHost, KernelRefused, Runner, SharedKernel
from cs3collab.kernels.shared import REFUSED_FOR_ALL, refusal
from cs3collab.kernels.workspace import Workspace
from cs3collab.service import documents, metrics
from cs3collab.service.identity import Identity, resolve_access
from cs3collab.service.protocol import CloseCode, session_close_reason
from cs3collab.service.room import Participant

if TYPE_CHECKING:
    from cs3collab.service.kernel_relay import KernelRelay

log = logging.getLogger("cs3collab.service.execution")

RAW_EXECUTION = "cs3collab:execution"
RAW_KERNEL = "cs3collab:kernel"
STALE_RUN = "The kernel this cell was running in stopped before the run ended; run it again to see its output."
TOKEN_EXPIRED = 4401


def runner_of(identity: Identity) -> Runner:
    return Runner(name=identity.display_name, user=identity.label, site=identity.idp)


class KernelParticipant:
    """One participant's kernel channel: a :class:`Participant` plus the kernel's view of it.

    Args:
        participant: who (identity, role, session) over which connection.
        file_id: the notebook's fileId; resource_id: its CS3 resource id.
    """

    def __init__(self, participant: Participant, file_id: str, resource_id) -> None:
        self.participant = participant
        self.file_id = file_id
        self.resource_id = resource_id
        self.runner = runner_of(participant.identity)
        self.channel_id = uuid.uuid4().hex  # names it to the replica running the kernel (kernel_relay)

    @property
    def role(self) -> str:
        return self.participant.role

    @property
    def can_run(self) -> bool:
        return self.participant.can_edit

    def deliver(self, message: dict) -> None:
        self.participant.connection.send_json_text(message)

    def close(self, code: int, reason: str) -> None:
        self.participant.connection.close(code, reason)


@dataclass
class _Notebook:
    """What the service must know to open a notebook's room for its runs."""

    file_id: str
    resource_id: Any
    session: Session  # an editor's, to load the room with


class SharedExecution:
    """The shared kernels of the rooms of one service.

    Args:
        host: the kernel host (its traits configure kernels).
        registry: the room registry (outputs are written into its rooms).
        client: the service's CS3 client (to obtain the kernels' scoped authority).
        access_recheck: seconds between re-checks of each kernel channel's access (0: on join only).
    """

    def __init__(self, host: KernelHost, registry, client: CS3Client, access_recheck: float) -> None:
        self.host = host
        self.registry = registry
        self.client = client
        self.access_recheck = access_recheck
        self.notebooks: dict[str, _Notebook] = {}
        self.relay: KernelRelay | None = None  # with --redis-url: kernels of other replicas (kernel_relay.py)
        host.observer = self
        self._recheck_lock = asyncio.Lock()

    async def run(self, started: asyncio.Future) -> None:
        """The host and the access re-checks, until the host stops."""
        async with asyncio.TaskGroup() as tasks:
            host_started = asyncio.get_running_loop().create_future()
            host_task = tasks.create_task(self.host.run(host_started), name="kernel host")
            await host_started
            recheck = tasks.create_task(self._recheck_loop(), name="kernel access re-check")
            started.set_result(None)
            await host_task
            recheck.cancel()

    def stop(self) -> None:
        self.host.stop()

    # -- participants ----------------------------------------------------------------

    def attach(self, channel: KernelParticipant, key: str) -> SharedKernel:
        kernel = self.host.kernel(key)
        if channel.can_run or key not in self.notebooks:
            self.notebooks[key] = _Notebook(channel.file_id, channel.resource_id, channel.participant.session)
        kernel.attach(channel)
        if self.relay is not None:
            self.relay.attached(key, channel)
        return kernel

    def detach(self, channel: KernelParticipant, key: str) -> None:
        if self.relay is not None:
            self.relay.detached(key, channel)
        kernel = self.host.get(key)
        if kernel is not None:
            kernel.detach(channel)
        self.host.released(key)
        if self.host.get(key) is None:
            self.notebooks.pop(key, None)

    async def send(self, channel: KernelParticipant, key: str, message: dict) -> None:
        if self.relay is not None:
            starts = channel.can_run and message["header"]["msg_type"] not in REFUSED_FOR_ALL
            try:
                elsewhere = await self.relay.remote_host(key, starting=starts)
            except KernelError as exc:
                for reply in refusal(message, str(exc)):
                    channel.deliver(reply)
                return
            if elsewhere is not None:
                self.relay.forward(elsewhere, key, channel, message)
                return
        kernel = self.host.kernel(key)
        await kernel.send(channel, message, self._workspace_factory(key, channel.participant.session))

    async def act(self, key: str, action: str, file_id: str, resource_id, participant: Participant) -> dict:
        """A REST call (``status``, ``start``, ``interrupt``, ``restart``) done
        where the notebook's kernel runs (here, or on another replica); the
        kernel's status after it."""
        if action != "status" and not participant.can_edit:
            log.warning("kernel %s refused room=%s user=%s site=%s role=%s", action, key,
                        participant.identity.label, participant.identity.idp, participant.role)
            raise KernelRefused(f"only editors {action} the shared kernel")
        if self.relay is not None:
            elsewhere = await self.relay.remote_host(key, starting=action in ("start", "restart"))
            if elsewhere is not None:
                identity = participant.identity
                who = {"name": identity.display_name, "user": identity.label, "site": identity.idp,
                       "role": participant.role, "run": participant.can_edit}
                return await self.relay.ask(elsewhere, key, action, who)
        if action == "start":
            await self.start(key, file_id, resource_id, participant)
        elif action == "interrupt":
            await self.interrupt(key, participant)
        elif action == "restart":
            await self.restart(key, participant, file_id, resource_id)
        return self.status(key)

    async def start(self, key: str, file_id: str, resource_id, participant: Participant) -> SharedKernel:
        """Start (or find) the kernel of a notebook for an editor: the REST start."""
        if not participant.can_edit:
            raise KernelRefused("only editors start the shared kernel")
        self.notebooks[key] = _Notebook(file_id, resource_id, participant.session)
        kernel = self.host.kernel(key)
        try:
            await kernel.ensure_started(runner_of(participant.identity), self._workspace_factory(key, participant.session))
        finally:
            self.host.released(key)
        return kernel

    async def interrupt(self, key: str, participant: Participant) -> None:
        kernel = self._running(key, participant, "interrupt")
        await kernel.interrupt(runner_of(participant.identity))

    async def restart(self, key: str, participant: Participant, file_id: str, resource_id) -> None:
        """Restart the kernel; a dead or culled one is started afresh (JupyterLab's
        "Restart" after "kernel died")."""
        if participant.can_edit and not (self.host.get(key) and self.host.get(key).alive):
            await self.start(key, file_id, resource_id, participant)
            return
        kernel = self._running(key, participant, "restart")
        await kernel.restart(runner_of(participant.identity))

    def _running(self, key: str, participant: Participant, what: str) -> SharedKernel:
        if not participant.can_edit:
            log.warning("kernel %s refused room=%s user=%s site=%s role=%s", what, key,
                        participant.identity.label, participant.identity.idp, participant.role)
            raise KernelRefused(f"only editors {what} the shared kernel")
        kernel = self.host.get(key)
        if kernel is None or not kernel.alive:
            raise KernelError("the shared kernel of this notebook is not running")
        return kernel

    def status(self, key: str) -> dict:
        kernel = self.host.get(key)
        if kernel is None:
            return {"state": "none", "connections": 0, "startedBy": None, "startedAt": None, "running": []}
        return kernel.model()

    def _workspace_factory(self, key: str, starter: Session):
        async def make(root: Path):
            notebook = self.notebooks[key]
            scoped = await scoped_session(self.client, starter, notebook.resource_id)
            return Workspace(scoped, notebook.resource_id, root)

        return make

    # -- access, re-checked --------------------------------------------------------------

    async def _recheck_loop(self) -> None:
        if self.access_recheck <= 0:
            return
        while True:
            await asyncio.sleep(self.access_recheck)  # re-check timer
            try:
                await self.recheck()
            except Exception:
                log.exception("kernel access re-check failed")

    async def recheck(self) -> None:
        """Ask CS3 again, as each attached participant, what they may do."""
        async with self._recheck_lock:
            # participants connected here (those of other replicas are re-checked there: kernel_relay)
            channels = [(key, c) for key, kernel in list(self.host.kernels.items()) for c in list(kernel.channels)
                        if isinstance(c, KernelParticipant)]
            await asyncio.gather(*(self._recheck_one(key, c) for key, c in channels))

    async def _recheck_one(self, key: str, channel: KernelParticipant) -> None:
        participant = channel.participant
        try:
            access = await resolve_access(participant.session, channel.resource_id)
        except (NotFound, PermissionDenied) as exc:
            self._cut(key, channel, CloseCode.SESSION, "access_revoked", "Your access to this notebook was removed.", exc)
            return
        except Unauthenticated as exc:
            if participant.session.renewable and participant.identity.federated:
                self._cut(key, channel, CloseCode.SESSION, "access_revoked",
                          "The OCM share of this notebook was removed or expired.", exc)
            else:
                self._cut(key, channel, TOKEN_EXPIRED, "session_expired", "Your CS3 session expired; reconnecting.", exc)
            return
        except CS3Error as exc:
            log.warning("kernel access re-check failed, nothing changed room=%s user=%s error=%s",
                        key, participant.identity.label, exc)
            return
        if access.role != participant.role:
            log.info("kernel role changed room=%s user=%s from=%s to=%s", key, participant.identity.label,
                     participant.role, access.role)
            participant.role = access.role
            if self.relay is not None:
                self.relay.changed(key)  # the kernel's replica applies it at once too

    def _cut(self, key: str, channel: KernelParticipant, code: int, reason: str, words: str, exc: Exception) -> None:
        kernel = self.host.get(key)
        if kernel is None or channel not in kernel.channels:
            return
        identity = channel.participant.identity
        log.info("kernel access lost, disconnecting room=%s user=%s site=%s reason=%s cs3=%s",
                 key, identity.label, identity.idp, reason, exc)
        self.detach(channel, key)
        channel.close(code, session_close_reason(reason, words) if code == CloseCode.SESSION else words)

    # -- runs, written into the room (the host's ExecutionObserver) ------------------------

    async def _room(self, key: str):
        """The live room of a notebook, opened for a run if nobody has it open."""
        live = self.registry.rooms.get(key)
        if live is not None and live.closing is None:
            return live
        notebook = self.notebooks.get(key)
        if notebook is None:
            return None
        return await self.registry.open(key, documents.NOTEBOOK, notebook.file_id, notebook.resource_id, notebook.session)

    async def started(self, execution: Execution) -> bool:
        metrics.kernel_execution(execution.runner.site)
        if execution.cell_id is None:
            return False
        live = await self._room(execution.key)
        if live is None or live.room.kind is not documents.NOTEBOOK:
            return False
        found = False

        def begin(document) -> None:
            nonlocal found
            cell = _cell(document, execution.cell_id)
            if cell is None:
                return
            found = True
            outputs = cell["outputs"]
            outputs.clear()
            cell["execution_count"] = None
            cell["execution_state"] = "busy"
            metadata = cell.get("metadata")
            if not isinstance(metadata, Map):
                metadata = cell["metadata"] = Map()
            metadata["cs3collab"] = {"execution": {"by": execution.runner.name, "site": execution.runner.site,
                                                   "at": execution.at}}

        await live.edit(begin, author=_author(execution), named=_named(execution))
        if not found:
            log.info("run of a cell not in the room room=%s cell=%s: outputs go to the frontends", execution.key,
                     execution.cell_id)
            self.registry.released(execution.key)
            return False
        live.notify({"type": RAW_EXECUTION, "state": "running", "cellId": execution.cell_id,
                     "by": execution.runner.name, "site": execution.runner.site, "at": execution.at})
        return True

    async def output(self, execution: Execution, msg_type: str, content: dict) -> None:
        live = await self._room(execution.key)  # reopened if it closed mid-run (nobody left in it)
        if live is None:
            return
        def add(document) -> None:
            cell = _cell(document, execution.cell_id)
            if cell is None:
                return
            outputs = cell["outputs"]
            if msg_type == "clear_output":
                if content.get("wait"):
                    execution.clear_on_next = True
                else:
                    outputs.clear()
                return
            if execution.clear_on_next:
                outputs.clear()
                execution.clear_on_next = False
            if msg_type == "update_display_data":
                _update_display(outputs, content)
                return
            if msg_type == "stream":
                last = outputs[len(outputs) - 1] if len(outputs) else None
                if isinstance(last, Map) and last.get("output_type") == "stream" and last.get("name") == content.get("name"):
                    text = last.get("text")
                    if isinstance(text, Text):
                        text += str(content.get("text", ""))
                        return
                outputs.append(Map({"output_type": "stream", "name": str(content.get("name", "stdout")),
                                    "text": Text(str(content.get("text", "")))}))
                return
            outputs.append(Map(_nb_output(msg_type, content, execution)))

        await live.edit(add, author=_author(execution), named=_named(execution))

    async def finished(self, execution: Execution, error: str | None) -> None:
        live = await self._room(execution.key)
        if live is not None:
            def end(document) -> None:
                cell = _cell(document, execution.cell_id)
                if cell is None:
                    return
                if execution.execution_count is not None:
                    cell["execution_count"] = execution.execution_count
                cell["execution_state"] = "idle"
                if error:
                    cell["outputs"].append(Map({"output_type": "error", "ename": "KernelDied", "evalue": error,
                                                "traceback": [error]}))

            await live.edit(end, author=_author(execution), named=_named(execution))
            live.notify({"type": RAW_EXECUTION, "state": "done", "cellId": execution.cell_id,
                              "by": execution.runner.name, "site": execution.runner.site, "at": execution.at,
                              **({"error": error} if error else {})})
        self.registry.released(execution.key)

    async def kernel_event(self, key: str, event: str, words: str) -> None:
        if event == "started":  # one kernel per notebook: a cell still "busy" ran in one that is gone
            await self.settle_cells(key, STALE_RUN)
        live = self.registry.rooms.get(key)
        if live is not None:
            live.notify({"type": RAW_KERNEL, "event": event, "message": words})
        if self.relay is not None and event in ("died", "culled"):
            await self.relay.vacate(key)  # the next start may happen on any replica

    async def settle_cells(self, key: str, words: str) -> int:
        """Mark ended, with ``words`` as their error, the cells of an open room
        still "busy" although no kernel runs them any more (their kernel's
        replica was killed, or the service was, mid-run). Returns how many."""
        live = self.registry.rooms.get(key)
        if live is None or live.closing is not None or live.room.kind is not documents.NOTEBOOK:
            return 0
        settled = 0

        def settle(document) -> None:
            nonlocal settled
            for cell in document.ycells:
                outputs = cell.get("outputs")
                if cell.get("execution_state") == "busy" and isinstance(outputs, Array):
                    cell["execution_state"] = "idle"
                    outputs.append(Map({"output_type": "error", "ename": "KernelDied", "evalue": words,
                                        "traceback": [words]}))
                    settled += 1

        await live.edit(settle, author=None)
        if settled:
            log.warning("cells left running by a kernel that is gone marked ended room=%s cells=%d", key, settled)
        return settled


def _author(execution: Execution) -> Participant | None:
    origin = execution.origin
    return getattr(origin, "participant", None)


def _named(execution: Execution) -> tuple[str, str] | None:
    """(user id, name) of who ran it from another replica (a relayed channel has no participant here)."""
    uid = getattr(execution.origin, "uid", "")
    return (uid, execution.runner.name) if uid else None


def _cell(document, cell_id: str | None) -> Map | None:
    if cell_id is None:
        return None
    for cell in document.ycells:
        if cell.get("id") == cell_id:
            return cell if cell.get("cell_type") == "code" and isinstance(cell.get("outputs"), Array) else None
    return None


def _nb_output(msg_type: str, content: dict, execution: Execution) -> dict:
    """An iopub output message as an nbformat output (what the notebook stores)."""
    if msg_type == "error":
        return {"output_type": "error", "ename": str(content.get("ename", "")), "evalue": str(content.get("evalue", "")),
                "traceback": [str(line) for line in content.get("traceback", [])]}
    output = {"output_type": msg_type, "data": dict(content.get("data") or {}),
              "metadata": dict(content.get("metadata") or {})}
    if msg_type == "execute_result":
        output["execution_count"] = content.get("execution_count", execution.execution_count)
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id:
        output["metadata"] = {**output["metadata"], "cs3collab_display_id": str(display_id)}
    return output


def _update_display(outputs: Array, content: dict) -> None:
    display_id = (content.get("transient") or {}).get("display_id")
    if not display_id:
        return
    for index in range(len(outputs)):
        output = outputs[index]
        if isinstance(output, Map) and (output.get("metadata") or {}).get("cs3collab_display_id") == display_id:
            output["data"] = dict(content.get("data") or {})
