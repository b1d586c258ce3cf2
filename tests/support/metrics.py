"""The service's own counters, read from its ``/metrics`` as a Prometheus scraper would."""

from __future__ import annotations

import re

import httpx

CALLS = re.compile(r'^cs3collab_cs3_calls_total\{method="(\w+)",status="(\w+)"\} ([0-9.e+]+)$', re.M)


async def cs3_calls(url: str) -> dict[str, float]:
    """CS3 calls the service at ``url`` has made so far, by method (all statuses)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    counts: dict[str, float] = {}
    for method, _, value in CALLS.findall(text):
        counts[method] = counts.get(method, 0) + float(value)
    return counts
