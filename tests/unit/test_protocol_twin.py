"""The labextension's protocol module (labextension/src/protocol.ts) knows
every close code and 1003 reason the service sends (protocol.CloseCode and
the table in errors.py): a code or reason added on one side only fails here."""

from __future__ import annotations

import re
from pathlib import Path

from cs3collab.service import errors
from cs3collab.service.protocol import CloseCode

PROTOCOL_TS = Path(__file__).resolve().parents[2] / "labextension" / "src" / "protocol.ts"


def _ts_block(source: str, opening: str) -> str:
    start = source.index(opening)
    return source[start : source.index("\n}", start)]


def test_every_close_code_is_in_the_typescript_twin():
    enum = _ts_block(PROTOCOL_TS.read_text(), "export enum CloseCode")
    ts_codes = {int(value) for value in re.findall(r"^\s*\w+ = (\d+)", enum, re.MULTILINE)}
    assert {int(code) for code in CloseCode} <= ts_codes


def test_every_refusal_reason_has_words_in_the_typescript_twin():
    table = _ts_block(PROTOCOL_TS.read_text(), "export const CLOSE_REASONS")
    ts_reasons = set(re.findall(r"^\s*(\w+):", table, re.MULTILINE))
    reasons = {refusal.reason for _cls, refusal in errors._TABLE} | {"internal_error", "bad_request"}
    assert reasons <= ts_reasons, reasons - ts_reasons
