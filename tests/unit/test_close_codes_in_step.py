"""The service's close codes and 1003 reasons, and their TypeScript twin, say the same.

``cs3collab/service/protocol.py`` (CloseCode) and the one table of
``cs3collab/service/errors.py`` are what the service sends;
``labextension/src/protocol.ts`` (CloseCode, CLOSE_REASONS) is how the
labextension reads it. A code or reason added on one side only would reach a
user as a bare number or word.
"""

from __future__ import annotations

import re
from pathlib import Path

from cs3collab.service import errors
from cs3collab.service.protocol import CloseCode

PROTOCOL_TS = Path(__file__).resolve().parents[2] / "labextension" / "src" / "protocol.ts"

OTHER_REASONS = {"access_revoked", "unknown_session", "bad_request", "internal_error"}
"""1003 reasons sent outside the table: access.py, handlers.py, refusal_for's fallbacks."""


def ts_block(name: str) -> str:
    text = PROTOCOL_TS.read_text()
    match = re.search(rf"{name}[^{{]*\{{(.*?)\n\}}", text, re.S)
    assert match, f"{name} not found in {PROTOCOL_TS}"
    return match.group(1)


def test_every_close_code_has_its_twin():
    ts_codes = {int(value) for value in re.findall(r"=\s*(\d+)", ts_block("export enum CloseCode"))}
    assert {int(code) for code in CloseCode} <= ts_codes


def test_every_1003_reason_has_words_in_the_labextension():
    words = set(re.findall(r"^\s*(\w+):", ts_block("export const CLOSE_REASONS"), re.M))
    sent = {refusal.reason for _cls, refusal in errors._TABLE if refusal.close_code == CloseCode.SESSION}
    assert sent | OTHER_REASONS <= words, sorted((sent | OTHER_REASONS) - words)
