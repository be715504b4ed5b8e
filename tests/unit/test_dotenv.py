"""The .env reader behind manage.py (config/dotenv.py): format, precedence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.dotenv import EnvFileError, load_env_file, parse_env_file, write_env_file


def test_parses_comments_export_and_quotes() -> None:
    text = """
# the issuer
GATEWAY_OIDC_ISSUER=https://idp.example.com
export GATEWAY_DEV=true
GATEWAY_OIDC_SCOPES="openid profile"
QUOTED_SINGLE='a # b'
EMPTY=
SPACED = value with spaces
"""
    assert parse_env_file(text) == {
        "GATEWAY_OIDC_ISSUER": "https://idp.example.com", "GATEWAY_DEV": "true",
        "GATEWAY_OIDC_SCOPES": "openid profile", "QUOTED_SINGLE": "a # b", "EMPTY": "",
        "SPACED": "value with spaces"}


@pytest.mark.parametrize("line", ["no equals sign", "1BAD=x", "BAD NAME=x", "=x"])
def test_a_bad_line_is_named(line: str) -> None:
    with pytest.raises(EnvFileError, match=r"my\.env, line 2: expected KEY=VALUE"):
        parse_env_file(f"OK=1\n{line}\n", "my.env")


def test_variables_already_set_are_never_overridden(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=from-file\nB=from-file\n")
    environ = {"A": "from-environment"}
    assert load_env_file(path, environ) == ["B"]
    assert environ == {"A": "from-environment", "B": "from-file"}


def test_a_missing_file_sets_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert load_env_file(tmp_path / "absent.env", environ) == []
    assert environ == {}


def test_written_files_read_back_and_are_private(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    values = {"GATEWAY_OIDC_CLIENT_SECRET": "s3cret=x", "GATEWAY_DEV": "true"}
    write_env_file(path, values, "written by a test\n\nsecond line")
    assert parse_env_file(path.read_text()) == values
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(EnvFileError):
        write_env_file(path, {"X": "two\nlines"}, "")
