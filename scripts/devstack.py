"""Run the development stack in the foreground: dev IdP on :9000, gateway on :8000."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from config.dotenv import write_env_file
from devidp.stack import ROOT, gateway_env, migrate, start_gateway

ENV_FILE_HEADER = """Written by scripts/dev for the development stack; rewritten on every start.
./manage.py reads it (variables already in the environment win). See README,
"Management commands"."""


def write_dev_env_file(env: dict[str, str]) -> None:
    """The gateway's own variables, so ./manage.py sees what the dev server sees."""
    ours = {k: v for k, v in env.items() if k.startswith("GATEWAY_") or k == "DJANGO_SETTINGS_MODULE"}
    write_env_file(ROOT / ".env", dict(sorted(ours.items())), ENV_FILE_HEADER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="gateway port")
    parser.add_argument("--idp-port", type=int, default=9000, help="dev IdP port")
    args = parser.parse_args()
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    gateway_url = f"http://127.0.0.1:{args.port}"
    idp = devidp.start(args.idp_port, gateway_url, keys_file=var / "devidp-keys.json",
                       log_file=var / "devidp.log")
    env = gateway_env(idp.issuer, args.port)
    write_dev_env_file(env)
    migrate(env)
    gateway = start_gateway(args.port, env, var / "gateway.log")
    print(f"\nGateway:   {gateway_url}/   (websocket {gateway_url.replace('http', 'ws')}/ws/)")
    print(f"Console:   {gateway_url}/console/   Admin: {gateway_url}/admin/ (alice)")
    print(f"Dev IdP:   {idp.issuer}")
    print("Users:     " + ", ".join(f"{n} / {u['password']} (groups: {', '.join(u['groups'])})"
                                    for n, u in devidp.USERS.items()))
    print(f"Logs:      {var}/gateway.log, {var}/devidp.log")
    print(f"Manage:    ./manage.py createsuperuser, ./manage.py explain ... (reads {ROOT / '.env'})")
    print("Ctrl-C stops both.\n", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
