"""Channel-layer group names that address sockets by session, subject and `sid`.

Layer group names allow only ``[a-zA-Z0-9._-]`` and fewer than 100 characters,
so identifiers are hashed. Any gateway process can reach any socket this way.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def session_group(session_key: str) -> str:
    return f"gw.session.{_digest(session_key)}"


def subject_group(issuer: str, subject: str) -> str:
    return f"gw.subject.{_digest(issuer, subject)}"


def sid_group(issuer: str, sid: str) -> str:
    return f"gw.sid.{_digest(issuer, sid)}"
