"""Redis servers of a test's own (plain, replica, Sentinel), real ``redis-server`` processes
on free loopback ports, for what must not touch the shared server: stopping it, killing
its clients, failing it over."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class PrivateRedis:
    """With ``tls`` (a folder from ``make_tls_files``), the port speaks only TLS, with that
    certificate; with ``client_certs`` too, clients must show a certificate from the same CA
    (redis-cli uses client.pem)."""

    def __init__(self, port: int, workdir: Path, *options: str, password: str | None = None,
                 tls: Path | None = None, client_certs: bool = False) -> None:
        self.port, self.workdir, self.options, self.password = port, workdir, options, password
        self.tls, self.client_certs = tls, client_certs
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, binary: str) -> list[str]:
        auth = ["--requirepass", self.password] if self.password else []
        return [binary, "--bind", "127.0.0.1", *self._listen(), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), *auth, *self.options]

    def _listen(self) -> list[str]:
        return [arg for name, value in self.listen_settings() for arg in (f"--{name}", value)]

    def listen_settings(self) -> list[tuple[str, str]]:
        """Where it listens, as (setting, value) pairs: a command line or a config file.
        With ``client_certs``, its own connections (replication, Sentinel's) use client.pem."""
        if self.tls is None:
            return [("port", str(self.port))]
        settings = [("port", "0"), ("tls-port", str(self.port)), ("tls-replication", "yes"),
                    ("tls-cert-file", str(self.tls / "server.pem")),
                    ("tls-key-file", str(self.tls / "server-key.pem")),
                    ("tls-ca-cert-file", str(self.tls / "ca.pem")),
                    ("tls-auth-clients", "yes" if self.client_certs else "no")]
        if self.client_certs:
            settings += [("tls-client-cert-file", str(self.tls / "client.pem")),
                         ("tls-client-key-file", str(self.tls / "client-key.pem"))]
        return settings

    def _cli(self) -> list[str]:
        tls = [] if self.tls is None else ["--tls", "--cacert", str(self.tls / "ca.pem")]
        if self.tls is not None and self.client_certs:
            tls += ["--cert", str(self.tls / "client.pem"), "--key", str(self.tls / "client-key.pem")]
        return ["redis-cli", "-p", str(self.port), *tls]

    def _cli_env(self) -> dict[str, str]:
        return {**os.environ, "REDISCLI_AUTH": self.password} if self.password else dict(os.environ)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: scripts/ensure-redis installs it"
        self.process = subprocess.Popen(self.command(binary), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if subprocess.run([*self._cli(), "ping"], capture_output=True,
                              text=True, env=self._cli_env()).stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cli(self, *command: str) -> str:
        return subprocess.run([*self._cli(), *command], capture_output=True,
                              text=True, check=True, env=self._cli_env()).stdout.strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivateSentinel(PrivateRedis):
    """A real Redis Sentinel watching ``master`` as service ``gw``, alone (quorum 1), quick
    to act: the master is down after 1 s without an answer."""

    def __init__(self, port: int, workdir: Path, master: PrivateRedis,
                 password: str | None = None) -> None:
        super().__init__(port, workdir, password=password, tls=master.tls,
                         client_certs=master.client_certs)
        self.master = master

    def command(self, binary: str) -> list[str]:
        conf = self.workdir / f"sentinel-{self.port}.conf"  # Sentinel rewrites it
        auth = f"requirepass {self.password}\n" if self.password else ""
        if self.master.password:
            auth += f"sentinel auth-pass gw {self.master.password}\n"
        listen = "".join(f"{name} {value}\n" for name, value in self.listen_settings())
        conf.write_text(f"bind 127.0.0.1\n{listen}dir {self.workdir}\n"
                        f"sentinel monitor gw 127.0.0.1 {self.master.port} 1\n"
                        "sentinel down-after-milliseconds gw 1000\n"
                        f"sentinel failover-timeout gw 10000\n{auth}")
        return [binary, str(conf), "--sentinel"]

    def master_port(self) -> int:
        return int(self.cli("SENTINEL", "get-master-addr-by-name", "gw").split()[1])


def make_tls_files(folder: Path) -> Path:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, both
    signed by it, as PEM files in ``folder`` (ca, server, server-key, client, client-key)."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                    signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(certificate("test CA", ca_key, "test CA", ca_key, True).public_bytes(pem))
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{name}.pem").write_bytes(
            certificate("127.0.0.1", key, "test CA", ca_key, False).public_bytes(pem))
        (folder / f"{name}-key.pem").write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder
