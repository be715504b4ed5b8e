"""The signature layer: parse, screen the header, verify. No claim checks here.

RFC 7515 (JWS compact serialization) and RFC 8725 (JWT BCP): the algorithm is
chosen by *our* allowlist, never by the token; key-bearing headers are refused.
A header or claim set that repeats a member name is refused (RFC 7515 §4, RFC 7519 §4).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

from oidc.errors import (
    BadSignature,
    DuplicateMember,
    ForbiddenHeader,
    MalformedToken,
    TokenTooLarge,
    UnknownCritical,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongTokenType,
)
from oidc.jwks import JwksCache
from oidc.profiles import normalize_typ
from oidc.types import Token, UnverifiedToken

__all__ = [
    "FORBIDDEN_HEADERS",
    "check_header",
    "check_size",
    "check_typ",
    "peek",
    "verify_parsed",
    "verify_signature",
    "verify_with_cache",
]

FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(segment: str, what: str) -> bytes:
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise MalformedToken(f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"{what} is not base64url") from exc


def _unique_members(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: build each JSON object, refusing a repeated member name.

    It runs for every object at every depth, so nested duplicates are refused too.
    """
    members = dict(pairs)
    if len(members) != len(pairs):
        raise DuplicateMember("a JSON object repeats a member name")
    return members


# One decoder, built once: json.loads(..., object_pairs_hook=...) would build a new
# decoder and scanner for every call, which costs more than the hook itself.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes (RFC 7515 §5.2 items 3, 4, 8), with unique
    member names; :class:`DuplicateMember` names the segment and nothing else."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except DuplicateMember:
        raise DuplicateMember(f"{what} repeats a member name") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedToken(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def check_size(raw: str, max_bytes: int) -> None:
    """Refuse oversized input before any parsing (RFC 8725 §3.x resource limits)."""
    if not isinstance(raw, str):
        raise MalformedToken("token is not a string")
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise TokenTooLarge(f"token exceeds {max_bytes} bytes")


def peek(raw: str, *, max_bytes: int) -> UnverifiedToken:
    """Header and claims WITHOUT verification (RFC 7515 §7.1). Size is capped first.

    Each segment is decoded exactly once; the signature layer verifies these same
    bytes, so the claims returned here are the claims the signature covers.
    """
    check_size(raw, max_bytes)
    parts = raw.split(".")
    if len(parts) != 3:
        raise MalformedToken("expected three dot-separated segments (compact JWS)")
    header = _json_object(_b64decode(parts[0], "header"), "header")
    claims = _json_object(_b64decode(parts[1], "payload"), "payload")
    signature = _b64decode(parts[2], "signature")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return UnverifiedToken(header=header, claims=claims, signing_input=signing_input,
                           signature=signature)


def check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> None:
    """Screen the protected header before touching any key (RFC 8725 §3.1, §3.10)."""
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise UnsupportedAlgorithm("alg is missing")
    if alg.lower() == "none":
        raise UnsupportedAlgorithm("alg none is never accepted")
    if alg not in algorithms:
        raise UnsupportedAlgorithm(f"alg {alg!r} is not in the allowlist")
    present = FORBIDDEN_HEADERS.intersection(header)
    if present:
        raise ForbiddenHeader(f"header carries key material: {sorted(present)}")
    if "crit" in header:
        raise UnknownCritical("crit header present; no extensions are understood")
    # RFC 7797 unencoded payloads are not JWTs; only the default b64=true is tolerated.
    if "b64" in header and header["b64"] is not True:
        raise MalformedToken("b64 header other than true")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise MalformedToken("kid is not a string")


def check_typ(
    header: Mapping[str, Any], accepted: frozenset[str], *, required: bool = True
) -> None:
    """``typ`` must be one of ``accepted`` (RFC 8725 §3.11), case-insensitive,
    ``application/`` prefix optional. When not ``required``, an absent typ passes."""
    typ = header.get("typ")
    if typ is None and not required:
        return
    if not isinstance(typ, str) or not _typ_in(normalize_typ(typ), accepted):
        raise WrongTokenType(f"typ {typ!r} is not one of {sorted(accepted)}")


def _typ_in(typ: str, accepted: frozenset[str]) -> bool:
    return typ in accepted or any(normalize_typ(a) == typ for a in accepted)


def verify_signature(raw: str, key: Key, algorithms: Collection[str]) -> Token:
    """Verify the JWS signature of ``raw`` with ``key`` (RFC 7515 §5.2).

    Safe on its own: it parses, screens the header and re-checks the allowlist.
    """
    if not isinstance(raw, str):
        raise MalformedToken("token is not a string")
    unverified = peek(raw, max_bytes=len(raw.encode("utf-8", "surrogatepass")))
    check_header(unverified.header, algorithms)
    return verify_parsed(unverified, key, algorithms)


def verify_parsed(unverified: UnverifiedToken, key: Key, algorithms: Collection[str]) -> Token:
    """Check the signature over the segments :func:`peek` decoded, with joserfc's
    algorithm model for the header's ``alg``; nothing is parsed a second time.

    The model checks that the key fits the algorithm (type, curve, ``use``, ``alg``),
    so an RSA public key can never serve as an HMAC secret (RFC 8725 §2.1).
    """
    alg = unverified.header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg not in algorithms:
        raise UnsupportedAlgorithm("algorithm refused by the signature layer")
    model = JWSRegistry.algorithms.get(alg)
    if model is None:
        raise UnsupportedAlgorithm(f"alg {alg!r} is not implemented")
    if not unverified.signature:
        raise BadSignature("signature is empty")
    try:
        model.check_key(key)
    except JoseError as exc:
        raise UnsupportedAlgorithm(f"cannot verify: {exc.error}") from exc
    if not model.verify(unverified.signing_input, unverified.signature, key):
        raise BadSignature("signature does not verify")
    return Token(header=unverified.header, claims=unverified.claims)


async def verify_with_cache(
    unverified: UnverifiedToken, algorithms: Collection[str], keys: JwksCache,
    *, from_provider: bool = False,
) -> Token:
    """Header screen (RFC 8725 §3.1, §3.10), key by ``kid`` from the cache, signature.

    A key that declares its own ``alg`` (RFC 7517 §4.4) only verifies that alg.
    ``from_provider``: the token came straight from the provider over the back channel,
    so an unknown ``kid`` always costs one (single-flight) key fetch.
    """
    header = unverified.header
    check_header(header, algorithms)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise UnknownKey("kid is not a string")
    key = await keys.resolve(kid, force=from_provider)
    if key.alg is not None and key.alg != header["alg"]:
        raise UnsupportedAlgorithm("alg differs from the key's declared alg")
    return verify_parsed(unverified, key, algorithms)
