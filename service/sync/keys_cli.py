"""`tandem keys`: make and rotate the keys Tandem holds for EHRs (docs/security.md, "Keys and rotation").

Nothing here is written anywhere but standard output: the operator puts the printed value into the secret store
that feeds the environment. Values already in the environment are kept, so a printed value is the whole new one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.console import Console
from rich.progress import track
from sqlmodel import col, select

from service.db.engine import make_engine
from service.db.unit_of_work import unit_of_work
from service.records.sync_target import SyncTarget
from service.settings import get_settings
from service.sync import auth as sync_auth
from service.sync import credentials

app = typer.Typer(help="Keys: SMART signing keys and the key that seals targets' tokens.", no_args_is_help=True)
console = Console(stderr=True)

# SMART Backend Services accepts RS384 and ES384; 3072-bit RSA matches P-384's strength (NIST SP 800-57 Part 1
# Rev. 5, Table 2: 3072-bit RSA and 256-383-bit EC keys both give 128 bits of security).
RSA_BITS = 3072


def new_private_key(algorithm: Literal["RS384", "ES384"]) -> sync_auth.PrivateKey:
    if algorithm == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP384R1())


def pem(key: sync_auth.PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@app.command("generate")
def generate(
    algorithm: Annotated[str, typer.Option("--alg", help="RS384 or ES384")] = "RS384",
    kid: Annotated[str | None, typer.Option(help="Key id (default: tandem-<alg>-<UTC date and time>)")] = None,
) -> None:
    """A new SMART signing key: prints its public JWKS entry, then the whole new TANDEM_SMART_PRIVATE_KEYS value."""
    if algorithm not in ("RS384", "ES384"):
        raise typer.BadParameter("use RS384 or ES384 (what SMART Backend Services accepts)", param_hint="--alg")
    settings = get_settings()
    kid = kid or f"tandem-{algorithm.lower()}-{datetime.now(UTC):%Y%m%d%H%M}"
    keys = dict(settings.smart_private_keys)
    if kid in keys:
        raise typer.BadParameter(f"{kid!r} is already a configured key id", param_hint="--kid")
    key = new_private_key(algorithm)  # type: ignore[arg-type]
    keys[kid] = pem(key)  # last = newest: it signs from the next start on; the others stay published
    console.print(
        f"[bold]New key {kid}[/bold] ({algorithm}). Its public JWKS entry (also served at /.well-known/jwks.json):"
    )
    print(json.dumps(sync_auth.public_jwk(kid, key), indent=2))
    console.print(
        f"\nSet {sync_auth.KEYS_ENV} to the line below (it keeps the {len(keys) - 1} key(s) already configured), "
        "restart, and remove the oldest key once every EHR has fetched the new JWKS:"
    )
    print(json.dumps(keys))


@app.command("credential-key")
def credential_key() -> None:
    """A new key for sealing targets' tokens: prints the whole new TANDEM_TARGET_CREDENTIAL_KEYS value."""
    keys = [*get_settings().target_credential_keys, credentials.new_key()]
    console.print(
        f"Set {credentials.KEYS_ENV} to the line below (the newest key seals, all open), restart, run "
        "`tandem keys reseal`, then drop the older keys:"
    )
    print(json.dumps(keys))


@app.command("reseal")
def reseal() -> None:
    """Seal every stored target token again with the newest TANDEM_TARGET_CREDENTIAL_KEYS key."""
    settings = get_settings()
    moved = failed = 0
    with unit_of_work(make_engine(settings.database_url)) as session:
        targets = session.exec(select(SyncTarget).where(col(SyncTarget.credential).is_not(None))).all()
        for target in track(targets, description="resealing", console=console):
            try:
                target.credential = credentials.reseal(settings, str(target.credential))
                moved += 1
            except credentials.CredentialError as error:
                failed += 1
                console.print(f"target {target.id}: {error}")
    console.print(f"{moved} token(s) resealed with the newest key, {failed} could not be opened.")
    if failed:
        raise typer.Exit(1)
