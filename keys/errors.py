"""The one exception tree of the `keys` package.

Messages name keys by id and version, paths and modes, tables and columns, never key material,
plaintext, ciphertext or an identifier being pseudonymised.

    KeysError
    ├── KeyProviderError            a key provider cannot supply what was asked
    │   ├── KeyringPermissionError  keyring file readable by group or others
    │   ├── KeyringFormatError      keyring document malformed
    │   └── KeyNotFoundError        no such key id / version
    ├── DevelopmentKeyringError     production mode refuses a development keyring
    ├── FormatError                 bytes or text that our formats do not accept
    ├── DecryptionError             opaque: wrong key, wrong context or tampered (no oracle)
    ├── UnsupportedSuiteError       crypto suite or KEM not known here
    ├── InvalidIdentifierError      a national ID or mobile number that cannot be normalised
    └── RotationError               a rotation step cannot proceed
"""

from __future__ import annotations


class KeysError(Exception):
    """Root of every error raised by `keys`."""


class KeyProviderError(KeysError):
    """A key provider cannot supply what was asked."""


class KeyringPermissionError(KeyProviderError):
    """The keyring file is readable by its group or by others."""


class KeyringFormatError(KeyProviderError):
    """The keyring document is malformed."""


class KeyNotFoundError(KeyProviderError):
    """No key with that id or version is held by the provider."""


class DevelopmentKeyringError(KeysError):
    """A development keyring was offered where production keys are required."""


class FormatError(KeysError):
    """Bytes or text that are not in one of our formats."""


class DecryptionError(KeysError):
    """Decryption or authentication failed. Deliberately says nothing about why."""

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class UnsupportedSuiteError(KeysError):
    """A crypto suite or KEM id that this build does not know."""


class InvalidIdentifierError(KeysError):
    """A national ID or mobile number that cannot be normalised (never included)."""


class RotationError(KeysError):
    """A rotation step cannot proceed."""
