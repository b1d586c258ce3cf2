"""docs/configuration.md is generated from the code and must stay true."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_configuration_reference_is_current():
    spec = importlib.util.spec_from_file_location("gen_configuration", DOCS / "gen_configuration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    actual = (DOCS / "configuration.md").read_text()
    assert actual == expected, "docs/configuration.md is stale: run .venv/bin/python docs/gen_configuration.py"
    for setting in ("CollabService.gateway", "CollabService.save_ceiling", "SQLiteJournal.synchronous", "--token-lifetime"):
        assert setting in actual
