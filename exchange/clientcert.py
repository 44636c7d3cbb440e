"""Client certificates, without the web: the RFC 9440 `Client-Cert` header value, certificate
files, and the RFC 8705 thumbprint a token is bound to.

    ClientCertError   a header value or file that is not one X.509 certificate

The thumbprint is `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER
encoding, 43 characters. Only the proxy verifies the chain (against the office's CA and its
CRL); the broker compares thumbprints, so a token works only with the certificate it was bound to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

# an RSA-4096 certificate with a few extensions is ~2 KiB of DER; refuse anything far larger
MAX_HEADER_CHARS = 16_384
THUMBPRINT_LENGTH = 43


class ClientCertError(Exception):
    """Not exactly one parseable certificate; the message names the problem, not the bytes."""


def thumbprint_s256(der: bytes) -> str:
    """RFC 8705 `x5t#S256` of a DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def is_thumbprint(value: str) -> bool:
    if len(value) != THUMBPRINT_LENGTH:
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "=")) == 32
    except (binascii.Error, ValueError):
        return False


def _certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise ClientCertError("not a DER X.509 certificate") from None


def parse_header(value: str) -> bytes:
    """The DER certificate in an RFC 9440 `Client-Cert` value: a structured-field byte
    sequence, `:` base64 `:` (RFC 8941 §3.3.5), nothing else (no parameters, no list)."""
    value = value.strip(" \t")
    if len(value) > MAX_HEADER_CHARS:
        raise ClientCertError("Client-Cert header too long")
    if len(value) < 3 or value[0] != ":" or value[-1] != ":" or ":" in value[1:-1]:
        raise ClientCertError("Client-Cert is not a structured-field byte sequence")
    try:
        der = base64.b64decode(value[1:-1], validate=True)
    except (binascii.Error, ValueError):
        raise ClientCertError("Client-Cert is not valid base64") from None
    _certificate(der)
    return der


def header_value(der: bytes) -> str:
    """The RFC 9440 header value for a DER certificate (tests, the contractor client)."""
    return ":" + base64.b64encode(der).decode("ascii") + ":"


def load_certificate_file(path: Path) -> bytes:
    """The DER of the one certificate in a PEM or DER file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClientCertError(f"cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ClientCertError(f"{path} holds no PEM certificate") from None
        if len(certs) != 1:
            raise ClientCertError(f"{path} holds {len(certs)} certificates; give one")
        return certs[0].public_bytes(Encoding.DER)
    _certificate(data)
    return data


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """What an operator sees when binding a token (subject and issuer as RFC 4514 text)."""

    thumbprint: str
    subject: str
    issuer: str
    not_after: str


def summarise(der: bytes) -> CertificateSummary:
    cert = _certificate(der)
    return CertificateSummary(thumbprint_s256(der), cert.subject.rfc4514_string(),
                              cert.issuer.rfc4514_string(),
                              cert.not_valid_after_utc.isoformat())


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The addresses whose `Client-Cert` (and `X-Forwarded-*`) headers are believed.

    Empty trusts nobody: a Client-Cert header then never reaches authentication."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> TrustedProxies:
        items = text.split(",") if isinstance(text, str) else list(text)
        networks = []
        for item in (i.strip() for i in items):
            if not item:
                continue
            if item == "*":
                raise ClientCertError("'*' would trust every client's Client-Cert header; "
                                      "name the proxy's addresses")
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ClientCertError(f"not an IP address or network: {item!r}") from None
        return cls(tuple(networks))

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def text(self) -> str:
        return ",".join(str(n) for n in self.networks)
