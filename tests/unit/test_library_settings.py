"""A host's GATEWAY dict goes through the service's validator; close codes every server sends."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.conf import from_mapping
from gateway.conf.values import ConfigError
from gateway.sockets.portable import portable_code

SECRET = "host-secret-key-0123456789-0123456789-0123456789"
REQUIRED = {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "web",
            "OIDC_CLIENT_SECRET": "s3cret"}


def test_a_host_dict_becomes_the_frozen_config() -> None:
    config = from_mapping({**REQUIRED, "ALLOWED_ORIGINS": ["https://a.example", "https://b.example"],
                           "OIDC_AUDIENCES": ("api",), "MAX_SOCKETS_PER_SUBJECT": 3,
                           "OIDC_INTROSPECTION": True}, secret_key=SECRET, debug=False)
    assert config.allowed_origins == {"https://a.example", "https://b.example"}
    assert config.audiences == {"api"}
    assert config.limits.sockets_per_subject == 3
    assert config.introspection is True
    assert config.secret_key == SECRET and config.dev is False
    assert config.routes_file is None, "a host declares its routes in code"


@pytest.mark.parametrize(("values", "message"), [
    ({"OIDC_ISSUER": "https://idp.example.com"}, 'GATEWAY["OIDC_CLIENT_ID"] is not set'),
    ({**REQUIRED, "OIDC_ISSUER": "http://idp.example.com"}, 'GATEWAY["OIDC_ISSUER"]='),
    ({**REQUIRED, "LEEWAY_SECONDS": 600}, 'GATEWAY["LEEWAY_SECONDS"]='),
    ({**REQUIRED, "ALLOWED_ORIGINS": ["*"]}, 'GATEWAY["ALLOWED_ORIGINS"] has'),
    ({**REQUIRED, "OIDC_ISUER": "x"}, "GATEWAY has unknown keys ['OIDC_ISUER']"),
    ({**REQUIRED, "DEV": {"yes": 1}}, 'GATEWAY["DEV"] is a dict'),
])
def test_errors_name_the_dict_key_and_the_fix(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping(values, secret_key=SECRET, debug=False)
    assert message in str(error.value)
    assert "GATEWAY_" not in str(error.value)


@pytest.mark.parametrize(("code", "sent"), [
    (1000, 1000), (1001, 4001), (1008, 4008), (1011, 4011), (1012, 4012), (1013, 4013),
    (4401, 4401), (4403, 4403), (4429, 4429), (3000, 3000),
])
def test_close_codes_are_ones_daphne_sends(code: int, sent: int) -> None:
    assert portable_code(code) == sent
    assert sent == 1000 or 3000 <= sent <= 4999
