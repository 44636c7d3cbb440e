"""Key providers: where root and purpose keys come from, behind one small interface.

A provider hands the keyring *root keys* (which wrap and unwrap data keys, and for an HSM or KMS
never leave it) and *purpose secrets* (pseudonym, blind-index and audit keys, used at high rate
in process). Three local providers share the document format of keys/keyring_document.py:
FileKeyring (default; refuses a file accessible to group or others), EnvKeyProvider (for
containers) and MemoryKeyProvider (tests). docs/keys.md shows an HSM/KMS provider.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag

from keys.errors import (
    DecryptionError,
    KeyNotFoundError,
    KeyProviderError,
    KeyringFormatError,
    KeyringPermissionError,
)
from keys.keyring_document import (
    DEFAULT_AUDIT_KEY_NAME,
    SECRET_LENGTH,
    Purpose,
    Versions,
    check_key_name,
    fresh_keys,
    load_json,
    parse_document,
    to_document,
)
from keys.suites import NONCE_LENGTH, Aead, Suite

__all__ = [
    "EnvKeyProvider",
    "FileKeyring",
    "KeyProvider",
    "LocalKeyProvider",
    "LocalRootKey",
    "MemoryKeyProvider",
    "Purpose",
    "RootKey",
    "Secret",
]

ROOT_KEY_ID = "root"
ENV_JSON = "EXCHANGE_KEYRING_JSON"
ENV_B64 = "EXCHANGE_KEYRING_B64"


@dataclass(frozen=True, slots=True)
class Secret:
    """Key material for one purpose and version."""

    purpose: Purpose
    version: int
    material: bytes = field(repr=False)


@runtime_checkable
class RootKey(Protocol):
    """A key-encryption key. An HSM-backed one performs wrap/unwrap inside the device."""

    @property
    def key_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def suite(self) -> Suite: ...

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, associated_data: bytes) -> bytes:
        """Raise keys.errors.DecryptionError on any failure."""
        ...


@runtime_checkable
class KeyProvider(Protocol):
    @property
    def is_development(self) -> bool: ...

    @property
    def audit_key_name(self) -> str: ...

    def root_key(
        self, suite: Suite, key_id: str | None = None, version: int | None = None
    ) -> RootKey:
        """The named root key, or the current one when key_id/version are None."""
        ...

    def secret(self, purpose: Purpose, version: int | None = None) -> Secret:
        """Material for `purpose`; the current version when `version` is None."""
        ...


class LocalRootKey:
    """A root key whose material is in this process (file, environment or memory providers)."""

    __slots__ = ("_key_id", "_version", "_suite", "_aead")

    def __init__(self, key_id: str, version: int, suite: Suite, material: bytes) -> None:
        self._key_id = key_id
        self._version = version
        self._suite = suite
        key = material if suite is Suite.INTL else suite.derive(material, b"exchange/kek/v1")
        self._aead: Aead = suite.aead(key)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def version(self) -> int:
        return self._version

    @property
    def suite(self) -> Suite:
        return self._suite

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_LENGTH)  # secrets.token_bytes is only a wrapper around this
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def unwrap(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) <= NONCE_LENGTH:
            raise DecryptionError()
        try:
            return self._aead.decrypt(blob[:NONCE_LENGTH], blob[NONCE_LENGTH:], associated_data)
        except InvalidTag:
            raise DecryptionError() from None

    def __repr__(self) -> str:
        return f"LocalRootKey({self._key_id}@{self._version}, {self._suite.value})"


class LocalKeyProvider:
    """Provider over an in-process keyring document. Subclasses decide where it is kept."""

    def __init__(
        self,
        keys: Mapping[Purpose, Versions],
        *,
        development: bool,
        audit_key_name: str = DEFAULT_AUDIT_KEY_NAME,
    ) -> None:
        missing = [p.value for p in Purpose if p not in keys]
        if missing:
            raise KeyringFormatError(f"keyring lacks keys for: {', '.join(missing)}")
        self._keys = dict(keys)
        self._development = development
        self._audit_key_name = audit_key_name
        self._root_cache: dict[tuple[Suite, int], LocalRootKey] = {}

    # -- KeyProvider ------------------------------------------------------------------------
    @property
    def is_development(self) -> bool:
        return self._development

    @property
    def audit_key_name(self) -> str:
        return self._audit_key_name

    def root_key(
        self, suite: Suite, key_id: str | None = None, version: int | None = None
    ) -> RootKey:
        if key_id is not None and key_id != ROOT_KEY_ID:
            raise KeyNotFoundError(f"root key {key_id!r} is not held by this provider")
        if version is not None:  # every unwrap names its version: skip building a Secret
            known = self._root_cache.get((suite, version))
            if known is not None:
                return known
        secret = self.secret(Purpose.ROOT, version)
        cached = self._root_cache.get((suite, secret.version))
        if cached is None:
            cached = LocalRootKey(ROOT_KEY_ID, secret.version, suite, secret.material)
            self._root_cache[(suite, secret.version)] = cached
        return cached

    def secret(self, purpose: Purpose, version: int | None = None) -> Secret:
        entry = self._keys[purpose]
        wanted = entry.current if version is None else version
        material = entry.versions.get(wanted)
        if material is None:
            raise KeyNotFoundError(f"no {purpose.value} key version {wanted}")
        return Secret(purpose, wanted, material)

    # -- management -------------------------------------------------------------------------
    def versions(self, purpose: Purpose) -> list[int]:
        return sorted(self._keys[purpose].versions)

    def current_version(self, purpose: Purpose) -> int:
        return self._keys[purpose].current

    def add_version(self, purpose: Purpose) -> int:
        """Generate a new version of `purpose` and make it current; old versions stay readable."""
        entry = self._keys[purpose]
        new = max(entry.versions) + 1
        self._change(
            purpose, Versions(new, {**entry.versions, new: secrets.token_bytes(SECRET_LENGTH)})
        )
        return new

    def retire_version(self, purpose: Purpose, version: int) -> None:
        entry = self._keys[purpose]
        if version == entry.current:
            raise KeyProviderError(f"cannot retire the current {purpose.value} key")
        if version not in entry.versions:
            raise KeyNotFoundError(f"no {purpose.value} key version {version}")
        remaining = {v: m for v, m in entry.versions.items() if v != version}
        self._change(purpose, Versions(entry.current, remaining))
        if purpose is Purpose.ROOT:
            self._root_cache = {k: v for k, v in self._root_cache.items() if k[1] != version}

    def set_audit_key_name(self, name: str) -> None:
        check_key_name(name)
        previous, self._audit_key_name = self._audit_key_name, name
        try:
            self._persist()
        except BaseException:
            self._audit_key_name = previous
            raise

    def _change(self, purpose: Purpose, entry: Versions) -> None:
        """Swap in a new entry and persist it; on failure the provider is left as it was."""
        previous = self._keys[purpose]
        self._keys[purpose] = entry
        try:
            self._persist()
        except BaseException:
            self._keys[purpose] = previous
            raise

    def to_document(self) -> dict[str, Any]:
        return to_document(self._keys, self._development, self._audit_key_name)

    def _persist(self) -> None:
        """Where changes go; in-memory by default."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(development={self._development})"


class MemoryKeyProvider(LocalKeyProvider):
    """Fresh random keys held in memory; for tests and throwaway demos."""

    @classmethod
    def generate(
        cls, *, development: bool = True, audit_key_name: str = DEFAULT_AUDIT_KEY_NAME
    ) -> MemoryKeyProvider:
        return cls(fresh_keys(), development=development, audit_key_name=audit_key_name)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> MemoryKeyProvider:
        keys, development, name = parse_document(document)
        return cls(keys, development=development, audit_key_name=name)


class EnvKeyProvider(LocalKeyProvider):
    """Keyring document from EXCHANGE_KEYRING_JSON (raw) or EXCHANGE_KEYRING_B64 (base64).

    Read-only: rotate by deploying a new document (see docs/keys.md).
    """

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> EnvKeyProvider:
        env = os.environ if environ is None else environ
        if ENV_JSON in env:
            text, source = env[ENV_JSON], ENV_JSON
        elif ENV_B64 in env:
            source = ENV_B64
            try:
                text = base64.b64decode(env[ENV_B64], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise KeyringFormatError(f"{ENV_B64} is not base64 of UTF-8 JSON") from None
        else:
            raise KeyProviderError(f"neither {ENV_JSON} nor {ENV_B64} is set")
        keys, development, name = parse_document(load_json(text, source))
        return cls(keys, development=development, audit_key_name=name)

    def _persist(self) -> None:
        raise KeyProviderError("the environment keyring is read-only; deploy a new document")


class FileKeyring(LocalKeyProvider):
    """The default provider: a JSON keyring file with mode 0600, written atomically."""

    def __init__(
        self,
        path: Path,
        keys: Mapping[Purpose, Versions],
        *,
        development: bool,
        audit_key_name: str = DEFAULT_AUDIT_KEY_NAME,
    ) -> None:
        super().__init__(keys, development=development, audit_key_name=audit_key_name)
        self.path = path
        self._seen = self._signature()
        self._checked = time.monotonic()

    # Another process (`exchange keys rotate-root` beside a running server) may rewrite the
    # file. A provider that kept its first reading would wrap new data keys under a root the
    # rotation is about to retire, and could not unwrap what the rotation re-wrapped. So the
    # current root is taken from the file as it is now (checked at most once a second), and an
    # unknown version of any key (a root, or the blind-index version a rotation moved the
    # database to) is looked for in the file before it is refused.
    REFRESH_INTERVAL = 1.0

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Reload the keyring if its file changed since it was read; True if it did."""
        self._checked = time.monotonic()
        seen = self._signature()
        if seen is None or seen == self._seen:
            return False
        fresh = FileKeyring.load(self.path)
        self._keys = fresh._keys
        self._development = fresh._development
        self._audit_key_name = fresh._audit_key_name
        self._root_cache = {}
        self._seen = fresh._seen
        return True

    def secret(self, purpose: Purpose, version: int | None = None) -> Secret:
        try:
            return super().secret(purpose, version)
        except KeyNotFoundError:
            if version is None or not self.refresh():
                raise
            return super().secret(purpose, version)

    def root_key(
        self, suite: Suite, key_id: str | None = None, version: int | None = None
    ) -> RootKey:
        if version is None and time.monotonic() - self._checked >= self.REFRESH_INTERVAL:
            self.refresh()  # wrapping: under the root that is current on disk
        try:
            return super().root_key(suite, key_id, version)
        except KeyNotFoundError:
            if version is None or not self.refresh():
                raise
            return super().root_key(suite, key_id, version)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        development: bool = False,
        audit_key_name: str = DEFAULT_AUDIT_KEY_NAME,
    ) -> FileKeyring:
        target = Path(path)
        if target.exists():
            raise KeyProviderError(f"keyring {target} already exists; refusing to overwrite")
        check_key_name(audit_key_name)
        ring = cls(target, fresh_keys(), development=development, audit_key_name=audit_key_name)
        ring._persist()
        return ring

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FileKeyring:
        target = Path(path)
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise KeyProviderError(f"keyring {target} does not exist") from None
        except OSError as exc:
            raise KeyProviderError(f"keyring {target} cannot be opened: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                raise KeyringPermissionError(
                    f"keyring {target} has mode {mode:04o}; it must not be accessible to group"
                    f" or others (run: chmod 600 {target})"
                )
            raw = handle.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyringFormatError(f"keyring {target} is not UTF-8 JSON") from None
        keys, development, name = parse_document(load_json(text, str(target)))
        return cls(target, keys, development=development, audit_key_name=name)

    def _persist(self) -> None:
        payload = json.dumps(self.to_document(), indent=2, sort_keys=True).encode("utf-8")
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=directory)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._seen = self._signature()  # our own write is no news
