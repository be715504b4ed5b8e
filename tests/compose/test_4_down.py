"""Issue 19: `down -v` leaves no container, network or volume of the project behind."""

from __future__ import annotations

import sys
import time

from tests.compose.stack import PROJECT, Stack


def test_down_removes_every_container_network_and_volume(stack: Stack) -> None:
    label = f"label=com.docker.compose.project={PROJECT}"
    assert stack.docker("ps", "-a", "-q", "--filter", label).stdout.split()  # it is up now
    started = time.monotonic()
    stack.compose("down", "-v", "--remove-orphans", timeout=300)
    print(f"\ncompose: down -v took {time.monotonic() - started:.1f} s", file=sys.stderr)
    assert stack.docker("ps", "-a", "-q", "--filter", label).stdout.split() == []
    assert stack.docker("network", "ls", "-q", "--filter", label).stdout.split() == []
    assert stack.docker("volume", "ls", "-q", "--filter", label).stdout.split() == []
    named = stack.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [v for v in named if v.startswith(f"{PROJECT}_")], named
    networks = stack.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in networks if n.startswith(f"{PROJECT}_")], networks
