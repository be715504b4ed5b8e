"""Start-up for the standalone benchmark processes (L, the holders): the hard file limit and
uvloop, like the servers they are compared with. Imports nothing of the project."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Coroutine
from typing import Any


def run_fast(main: Coroutine[Any, Any, None]) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main)
