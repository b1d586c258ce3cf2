"""Tests of the collaboration service (cs3collab.service)."""
