"""Operations endpoints of ``cs3collab serve``: ``/metrics``, ``/healthz``, ``/readyz``.

* ``GET /metrics``: Prometheus text format (see :mod:`cs3collab.service.metrics`).
* ``GET /healthz``: 200 ``{"status": "ok"}`` while the process serves
  requests at all (a liveness probe: restart me when this stops answering).
* ``GET /readyz``: 200 ``{"status": "ready", "checks": {...}}`` when the CS3
  gateway answers a gRPC call and the journal can commit a write; else 503
  with ``"status": "not ready"`` and, per failed check, what went wrong (a
  readiness probe: send me no traffic meanwhile). Each check is bounded by
  ``timeout`` seconds so a hung gateway makes the probe fail, not hang.

None of them needs a token: they say nothing about files or users. Keep
them off the public ingress (the Helm chart's NetworkPolicy does).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import tornado.web

from cs3collab.service import metrics

log = logging.getLogger("cs3collab.service.health")

Check = Callable[[], Awaitable[None]]


class MetricsHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        body, content_type = metrics.exposition(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.finish(body)


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok"}))


class ReadyHandler(tornado.web.RequestHandler):
    """Runs every named check concurrently, each within ``timeout`` seconds."""

    def initialize(self, checks: dict[str, Check], timeout: float) -> None:
        self.checks = checks
        self.timeout = timeout

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            return str(exc) or type(exc).__name__
        return "ok"

    async def get(self) -> None:
        names = list(self.checks)
        results = dict(zip(names, await asyncio.gather(*(self._run(self.checks[n]) for n in names))))
        ready = all(result == "ok" for result in results.values())
        if not ready:
            log.warning("not ready %s", " ".join(f"{name}={result!r}" for name, result in results.items()))
        self.set_status(200 if ready else 503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ready" if ready else "not ready", "checks": results}))
