"""The code blocks of the quick starts (docs/quickstart-*.md), as the tests run them.

A block is the fenced block right after a ``<!-- quickstart: NAME -->`` line, so a test runs
exactly what a reader copies. The tests point the blocks' example URLs at their own stack.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"<!-- quickstart: ([\w-]+) -->\n```\w*\n(.*?)\n```", re.S)


def blocks(doc: str) -> dict[str, str]:
    """Every marked block of ``docs/<doc>``, by name."""
    return dict(_BLOCK.findall((ROOT / "docs" / doc).read_text()))


def block(doc: str, name: str) -> str:
    found = blocks(doc)
    assert name in found, f"docs/{doc} has no block marked <!-- quickstart: {name} -->"
    return found[name]


def env_block(doc: str, name: str) -> dict[str, str]:
    """A block of ``KEY=VALUE`` lines (``#`` comments allowed) as a mapping."""
    values: dict[str, str] = {}
    for line in block(doc, name).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def pointed_at(text: str, *, gateway: str, provider: str | None = None) -> str:
    """The block with the development stack's URLs (127.0.0.1:8000, :9000) replaced."""
    text = text.replace("http://127.0.0.1:8000", gateway)
    text = text.replace("ws://127.0.0.1:8000", gateway.replace("http://", "ws://"))
    if provider is not None:
        text = text.replace("http://127.0.0.1:9000", provider)
    return text
