"""All key custody and cryptography of the broker (docs/keys.md)."""

from keys.contractor_keys import (
    ContractorPrivateKey,
    ContractorPublicKey,
    Kem,
    generate_keypair,
)
from keys.datakeys import DataKey, WrappedKey
from keys.errors import (
    DecryptionError,
    DevelopmentKeyringError,
    FormatError,
    InvalidIdentifierError,
    KeyNotFoundError,
    KeyProviderError,
    KeyringFormatError,
    KeyringPermissionError,
    KeysError,
    RotationError,
    UnsupportedSuiteError,
)
from keys.events import InMemoryKeyEventSink, KeyEvent, KeyEventSink, KeyEventType
from keys.fields import EncryptedValue, FieldContext
from keys.idnumbers import normalise_national_id
from keys.keyring import Keyring
from keys.phones import normalise_mobile
from keys.providers import (
    EnvKeyProvider,
    FileKeyring,
    KeyProvider,
    LocalKeyProvider,
    MemoryKeyProvider,
    Purpose,
    RootKey,
)
from keys.pseudonyms import BlindIndexField
from keys.sealing import ResponseOpener, ResponseSealer, open_field, seal_field
from keys.shredding import shred_data_key
from keys.suites import Suite

__all__ = [
    "BlindIndexField",
    "ContractorPrivateKey",
    "ContractorPublicKey",
    "DataKey",
    "DecryptionError",
    "DevelopmentKeyringError",
    "EncryptedValue",
    "EnvKeyProvider",
    "FieldContext",
    "FileKeyring",
    "FormatError",
    "InMemoryKeyEventSink",
    "InvalidIdentifierError",
    "Kem",
    "KeyEvent",
    "KeyEventSink",
    "KeyEventType",
    "KeyNotFoundError",
    "KeyProvider",
    "KeyProviderError",
    "KeyringFormatError",
    "KeyringPermissionError",
    "Keyring",
    "KeysError",
    "LocalKeyProvider",
    "MemoryKeyProvider",
    "Purpose",
    "ResponseOpener",
    "ResponseSealer",
    "RootKey",
    "RotationError",
    "Suite",
    "UnsupportedSuiteError",
    "WrappedKey",
    "generate_keypair",
    "normalise_mobile",
    "normalise_national_id",
    "open_field",
    "seal_field",
    "shred_data_key",
]
