"""Fixtures shared by the cgroup driver tests."""

from __future__ import annotations

import pytest

from reference.cgroups import _fs
from reference.cgroups.fake import WriteLog


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> WriteLog:
    """Every cgroupfs write the driver makes, in order (instead of writing)."""
    w = WriteLog()
    monkeypatch.setattr(_fs, "write", w)
    return w
