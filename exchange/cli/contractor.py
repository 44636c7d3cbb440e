"""`exchange contractor`: the contractor's side — key pair generation and feed sync.

    exchange contractor keygen --out DIR [--kem x25519|mlkem768-x25519]
    exchange contractor sync --url URL --token TOKEN --key PRIVATE_KEY --store DIR --purpose P

The private key never leaves the contractor; the office registers the public key file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import httpx
import typer

from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from keys.contractor_keys import ContractorPrivateKey, Kem, generate_keypair

app = App(help="Contractor side: key pair and feed sync.", no_args_is_help=True)

PRIVATE_NAME = "contractor-private.key"
PUBLIC_NAME = "contractor-public.key"


def write_private(path: Path, text: str) -> None:
    """Create the file 0600 from the start (never world-readable, even briefly); no overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


@app.command("keygen")
@fail_cleanly
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory for the key pair")],
    kem: Annotated[str, typer.Option("--kem", help="x25519 | mlkem768-x25519")] = "x25519",
) -> None:
    """Generate an HPKE key pair: private key (0600) and the public key to register."""
    try:
        chosen = Kem.parse(kem)
    except Exception:
        raise CliError(f"unknown KEM {kem!r}; use x25519 or mlkem768-x25519") from None
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if private_path.exists() or public_path.exists():
        raise CliError(f"{out} already holds a key pair; refusing to overwrite")
    private, public = generate_keypair(chosen)
    write_private(private_path, private.to_text())
    public_path.write_text(public.to_text(), encoding="ascii")
    typer.echo(f"private key: {private_path} (keep it; mode 0600)")
    typer.echo(f"public key:  {public_path} (register it with the office)")
    typer.echo(f"fingerprint: {public.fingerprint.hex()} ({chosen.value})")


def load_private(path: Path) -> ContractorPrivateKey:
    mode = path.stat().st_mode & 0o077
    if mode:
        raise CliError(f"{path} is readable by group or others; run chmod 600")
    return ContractorPrivateKey.from_text(path.read_text(encoding="ascii"))


@app.command("sync")
@fail_cleanly
def sync_command(
    url: Annotated[str, typer.Option("--url", help="Broker base URL, e.g. http://127.0.0.1:8000")],
    token: Annotated[
        str, typer.Option("--token", envvar="EXCHANGE_CONTRACTOR_TOKEN", help="Bearer token")
    ],
    key: Annotated[Path, typer.Option("--key", help="Private key file (from keygen)")],
    store: Annotated[Path, typer.Option("--store", help="Local store directory (0700)")],
    purpose: Annotated[str, typer.Option("--purpose", help="home_visit | online_guidance | ...")],
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000)] = 100,
) -> None:
    """Pull changes since the saved cursor, open sealed fields, apply deletions, acknowledge."""
    from exchange.client.store import LocalStore
    from exchange.client.sync import SyncError, http_client, sync

    private = load_private(key)
    try:
        with http_client(url, token) as client, LocalStore(store) as local:
            result = sync(client, private, local, purpose, page_size=page_size)
    except SyncError as exc:
        raise CliError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the broker at {url} ({type(exc).__name__})") from None
    typer.echo(
        f"synced {purpose}: {result.pages} pages, {result.cases} cases, "
        f"{result.tombstones} deletions, {result.acknowledged} acknowledged"
    )
