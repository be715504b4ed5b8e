from oidc.types import CredentialKind
from oidc.verify import verify_access_token

from .conftest import AT_HEADER, ISSUER, NOW, access_claims, encode


async def test_valid_generic_access_token(config, keys):
    raw = encode(AT_HEADER, access_claims(groups=["eng"], roles=["admin"]))
    p = await verify_access_token(raw, {ISSUER: config}, {ISSUER: keys}, now=NOW,
                                  credential=CredentialKind.BEARER)
    assert p.subject == "user-1"
    assert p.scopes == {"openid", "ws.read"}
    assert p.groups == {"eng"} and p.roles == {"admin"}
    assert p.client_id == "spa" and p.kid == "k1" and p.jti_hash and len(p.jti_hash) == 16
