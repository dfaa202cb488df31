"""Debian's nginx as a subprocess in a temporary prefix, in front of `bot run` workers: the
shipped site file (deploy/nginx/qingmu-bot.conf) with only its ports, certificate paths and
upstream addresses changed, inside a minimal nginx.conf, and a self-signed certificate made at
test time."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NGINX = Path("/usr/sbin/nginx")
SITE = Path(__file__).parent.parent.parent / "deploy" / "nginx" / "qingmu-bot.conf"
#: the workers the shipped upstream names
SHIPPED_WORKERS = ("127.0.0.1:8081", "127.0.0.1:8082")


def require_nginx() -> None:
    """Skip without Debian's nginx, except in CI (CI=true), where it must be there."""
    if NGINX.is_file() and os.access(NGINX, os.X_OK):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{NGINX} is required in CI (apt-get install nginx; .ci/run installs it)")
    pytest.skip(f"no {NGINX} (apt-get install nginx); required under CI=true")


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts only this certificate (and checks the name 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qingmu-bot test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    found = Certificate(folder / "cert.pem", folder / "key.pem")
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


def _replace_once(text: str, old: str, new: str) -> str:
    """`old` must be in the site file exactly once: if the file changes shape, the test says
    which line it no longer finds rather than testing something else."""
    assert text.count(old) == 1, f"{SITE.name}: expected `{old}` once, found {text.count(old)}"
    return text.replace(old, new)


def site_for_test(
    http_port: int, https_port: int, certificate: Certificate, workers: list[int]
) -> str:
    """The shipped site file with its ports, certificate paths and workers changed."""
    text = SITE.read_text(encoding="utf-8")
    text = _replace_once(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _replace_once(
        text,
        "ssl_certificate /etc/letsencrypt/live/bot.example.com/fullchain.pem;",
        f"ssl_certificate {certificate.cert};",
    )
    text = _replace_once(
        text,
        "ssl_certificate_key /etc/letsencrypt/live/bot.example.com/privkey.pem;",
        f"ssl_certificate_key {certificate.key};",
    )
    assert len(workers) == len(SHIPPED_WORKERS)
    for shipped, port in zip(SHIPPED_WORKERS, workers, strict=True):
        text = _replace_once(text, f"server {shipped} ", f"server 127.0.0.1:{port} ")
    return text


def main_config(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf around the site: everything nginx writes stays in `prefix`, and the
    access log names the worker that served each request."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers that can write the temp dirs
    return (
        f"daemon off;\n{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    log_format upstreams '$request_method $uri $status $upstream_addr';\n"
        f"    access_log {prefix}/access.log upstreams;\n"
        f"    client_body_temp_path {prefix}/client_body;\n"
        f"    proxy_temp_path {prefix}/proxy;\n"
        f"    fastcgi_temp_path {prefix}/fastcgi;\n"
        f"    uwsgi_temp_path {prefix}/uwsgi;\n"
        f"    scgi_temp_path {prefix}/scgi;\n"
        f"    include {site};\n"
        "}\n"
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running(
    prefix: Path, http_port: int, https_port: int, certificate: Certificate, workers: list[int]
) -> Iterator[Path]:
    """nginx with the shipped site in front of `workers`, until the block ends; yields its
    access log."""
    prefix.mkdir(parents=True, exist_ok=True)
    site = prefix / "qingmu-bot.conf"
    site.write_text(site_for_test(http_port, https_port, certificate, workers), encoding="utf-8")
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site), encoding="utf-8")
    command = [str(NGINX), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not (_listening(http_port) and _listening(https_port)):
            assert process.poll() is None, f"nginx exited: {(prefix / 'error.log').read_text()}"
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield prefix / "access.log"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
