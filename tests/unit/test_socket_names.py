"""Socket names: unique within a process and across processes, also after a fork."""

from __future__ import annotations

import os

import pytest

from consumers.base import socket_name


def test_names_within_a_process_never_repeat() -> None:
    names = [socket_name() for _ in range(10_000)]
    assert len(set(names)) == len(names)
    assert all(name.startswith("ws.") for name in names)


def test_a_forked_process_takes_a_prefix_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = socket_name()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # what a forked child sees
    child = socket_name()
    assert parent.split(".")[1] != child.split(".")[1]
