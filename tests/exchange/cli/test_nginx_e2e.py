"""A real nginx (Debian's, with its njs module) in front of `exchange serve`, configured from
deploy/nginx/: no certificate is refused, another contractor's certificate with this
contractor's token answers 401 invalid_token, the right pair gets the feed; a revoked
certificate (CRL) and TLS 1.1 are refused; the console host needs no certificate.

Under CI=true a missing nginx fails this test (the Makefile's system-deps installs it);
elsewhere it is skipped, loudly."""

from __future__ import annotations

import os
import shutil
import ssl
import string
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from exchange.cli.dev import prepare
from exchange.settings import Settings
from tests.conftest import in_ci
from tests.exchange.certs import Issued, empty_crl, issue, make_ca
from tests.exchange.serving import cli, environment, free_port, start

pytestmark = [pytest.mark.db, pytest.mark.slow]
DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "nginx"
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")


def _nginx() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                    else None)
    if exe is None or not NJS_MODULE.exists():
        message = "nginx with its njs module is not installed (make system-deps installs them)"
        if in_ci():
            pytest.fail(message + "; CI requires it")
        print(f"\n!!! SKIPPED: {message}")  # noqa: T201 - loud on purpose
        pytest.skip(message)
    return exe


def _nginx_conf(tmp: Path, tls: Path, broker: str, api_port: int, console_port: int) -> Path:
    site = string.Template((DEPLOY / "exchange.conf").read_text(encoding="utf-8"))
    filled = site.safe_substitute(NJS_DIR=str(DEPLOY), BROKER=broker, TLS_DIR=str(tls),
                                  API_LISTEN=f"127.0.0.1:{api_port}", API_HOST="api.test",
                                  CONSOLE_LISTEN=f"127.0.0.1:{console_port}",
                                  CONSOLE_HOST="console.test")
    assert "${" not in filled.split("\n", 5)[-1]  # all placeholders filled (not the header)
    (tmp / "exchange.conf").write_text(filled, encoding="utf-8")
    temp = "\n".join(f"  {kind}_temp_path {tmp / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = tmp / "nginx.conf"
    main.write_text(
        f"load_module {NJS_MODULE};\n{user}daemon off;\nworker_processes 1;\n"
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  access_log {tmp / 'access.log'};\n{temp}\n"
        f"  include {tmp / 'exchange.conf'};\n}}\n", encoding="utf-8")
    return main


def _client(ca: Path, pair: tuple[Path, Path] | None, *, tls_max: ssl.TLSVersion | None = None
            ) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        context.load_cert_chain(str(pair[0]), str(pair[1]))
    if tls_max is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = tls_max
    return httpx.Client(verify=context, timeout=10)


def _wait(url: str, ca: Path, pair: tuple[Path, Path] | None, deadline: float) -> None:
    while True:
        try:
            with _client(ca, pair) as c:
                c.get(url)
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_contractor_token_works_only_with_its_own_certificate(database_url: str,
                                                              tmp_path: Path) -> None:
    nginx = _nginx()
    tls = tmp_path / "tls"
    tls.mkdir(mode=0o700)
    ca = make_ca()
    ca_path, _ = ca.write(tls, "office-ca")
    issue(ca, "127.0.0.1", server_names=("127.0.0.1", "localhost")).write(tls, "server")
    revoked = issue(ca, "已吊销的接口证书")
    (tls / "office-ca.crl").write_bytes(empty_crl(ca, (revoked,)))
    pairs: dict[str, tuple[Path, Path]] = {}
    certs: dict[str, Issued] = {
        "a": issue(ca, "青岛安心母婴健康服务有限公司 数据接口", unit="信息部"),
        "b": issue(ca, "青岛启航家庭健康服务中心 数据接口"),
        "revoked": revoked,
    }
    for name, cert in certs.items():
        pairs[name] = cert.write(tls, f"client-{name}")

    home = tmp_path / "home"
    settings = Settings(home=home, database_url=database_url)
    prepare(settings, lambda _line: None)  # the demo: contractors, agreements, assignments
    env = environment(home, database_url, EXCHANGE_MODE="development")
    tokens = {}
    for name, principal in (("a", "demo-contractor"), ("b", "demo-contractor-b")):
        rotated = cli(env, "admin", "principal", "rotate", principal, "--cert",
                      str(pairs[name][0]))
        assert rotated.returncode == 0, rotated.stderr
        assert "CN=青岛" in rotated.stderr  # the operator sees whose certificate it is
        tokens[name] = rotated.stdout.split()[-1]

    server = start(env, tmp_path / "serve.log", "--forwarded-allow-ips", "127.0.0.1")
    proxy = None
    try:
        server.wait_ready()
        api_port, console_port = free_port(), free_port()
        conf = _nginx_conf(tmp_path, tls, server.base.removeprefix("http://"), api_port,
                           console_port)
        proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        api = f"https://127.0.0.1:{api_port}"
        _wait(f"{api}/healthz", ca_path, pairs["a"], time.monotonic() + 30)
        feed = f"{api}/v1/cases?purpose=home_visit&limit=5"
        auth = {"Authorization": f"Bearer {tokens['a']}"}

        with _client(ca_path, None) as no_cert:
            refused = no_cert.get(feed, headers=auth)
        assert refused.status_code == 400 and "No required SSL certificate" in refused.text

        with _client(ca_path, pairs["b"]) as other:
            wrong = other.get(feed, headers=auth)
            # even a Client-Cert header of the right certificate, sent by the client, is
            # replaced by nginx with the one it verified
            forged = other.get(feed, headers={**auth, "Client-Cert": "::"})
        for answer in (wrong, forged):
            assert answer.status_code == 401, answer.text
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]

        with _client(ca_path, pairs["a"]) as mine:
            pulled = mine.get(feed, headers=auth)
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["items"], "the demo assigns cases to contractor A"

        with _client(ca_path, pairs["revoked"]) as gone:
            crl = gone.get(f"{api}/healthz")
        assert crl.status_code == 400 and "certificate" in crl.text.lower()

        with pytest.raises((httpx.ConnectError, ssl.SSLError)), \
                _client(ca_path, pairs["a"], tls_max=ssl.TLSVersion.TLSv1_1) as old:
            old.get(f"{api}/healthz")

        with _client(ca_path, None) as browser:
            console = browser.get(f"https://127.0.0.1:{console_port}/healthz")
        assert console.status_code == 200
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        assert server.terminate() == 0, server.output()
        server.kill()
