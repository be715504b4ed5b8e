"""The quick starts' configuration blocks name real variables and pass startup validation
(the e2e and browser tiers run the blocks themselves: tests/e2e/test_quickstarts.py,
tests/browser/test_quickstart_browser.py)."""

from __future__ import annotations

from pathlib import Path

from joserfc.jwk import RSAKey

from config.env import VARIABLES, load_config
from tests.quickstart import block, blocks, env_block


def test_every_quick_start_has_its_blocks() -> None:
    assert set(blocks("quickstart-provider.md")) == {"provider-env", "private-key-jwt-env"}
    assert set(blocks("quickstart-browser.md")) == {"browser-module", "browser-get-ticket"}
    assert set(blocks("quickstart-backend.md")) == {"publish-sh", "publish-py"}


def test_the_provider_blocks_name_only_real_settings() -> None:
    for name in ("provider-env", "private-key-jwt-env"):
        unknown = set(env_block("quickstart-provider.md", name)) - set(VARIABLES)
        assert not unknown, f"{name}: {sorted(unknown)} are not settings (config/env.py)"


def test_the_generic_block_passes_startup_validation() -> None:
    config = load_config(env_block("quickstart-provider.md", "provider-env"))
    assert config.client_auth.method == "client_secret_basic"
    assert config.public_url == "https://gw.example.com"


def test_the_private_key_jwt_block_passes_startup_validation(tmp_path: Path) -> None:
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    env = {**env_block("quickstart-provider.md", "provider-env"),
           **env_block("quickstart-provider.md", "private-key-jwt-env"),
           "GATEWAY_OIDC_CLIENT_KEY_FILE": str(key_file)}
    del env["GATEWAY_OIDC_CLIENT_SECRET"]  # as the page says
    auth = load_config(env).client_auth
    assert (auth.method, auth.key_id, auth.algorithm) == ("private_key_jwt", "gateway-2026", "RS256")


def test_the_browser_page_names_the_audience_rule_and_the_error_contract() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "quickstart-browser.md").read_text()
    assert "GATEWAY_OIDC_AUDIENCES" in text and "GATEWAY_ALLOWED_ORIGINS" in text
    assert "status: response.status" in block("quickstart-browser.md", "browser-get-ticket")
