"""``python -m devidp --port 9000 --gateway-url http://127.0.0.1:8000`` (foreground)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devidp.launcher import DevIdpError, run_foreground


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devidp", description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--gateway-url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--extra-gateway-url",
        action="append",
        default=[],
        help="further gateway base URL allowed as redirect target (repeatable)",
    )
    parser.add_argument("--access-token-ttl", type=int, default=300)
    parser.add_argument("--id-token-ttl", type=int, default=300)
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        help="private JWKS file (default: var/devidp/keys-PORT.json)",
    )
    args = parser.parse_args(argv)
    try:
        return run_foreground(
            args.port,
            args.gateway_url,
            extra_gateway_urls=args.extra_gateway_url,
            access_token_ttl=args.access_token_ttl,
            id_token_ttl=args.id_token_ttl,
            keys_file=args.keys_file,
        )
    except DevIdpError as exc:
        print(f"devidp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
