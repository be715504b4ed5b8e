"""How the public modules load a name: from its home module, on first use.

A name's home may need the app registry (it imports models), so nothing is imported before
the name is asked for; the settings module and the server's launcher may import any public
module before ``django.setup()``. Re-exporting costs nothing after that: the caller holds
the very object its home module defines.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any


def load(module: str, homes: Mapping[str, str], name: str) -> Any:
    """``name`` of public ``module``; ``homes`` maps it to ``"home.module"`` (same name)
    or ``"home.module:attribute"`` (exported under another name)."""
    if name not in homes:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    home, _, attribute = homes[name].partition(":")
    return getattr(import_module(home), attribute or name)
