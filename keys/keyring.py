"""The Keyring: the only holder of key material in the broker (docs/keys.md; invariants 5, 6)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import fields, pseudonyms
from keys.datakeys import DataKey, WrappedHeader, WrappedKey, kek_part, owner_binding
from keys.errors import DecryptionError, DevelopmentKeyringError, FormatError
from keys.fields import EncryptedValue, FieldContext
from keys.idnumbers import normalise_national_id
from keys.keyring_document import check_key_name
from keys.phones import normalise_mobile
from keys.providers import KeyProvider, Purpose, RootKey
from keys.pseudonyms import BlindIndexField, PseudonymKey
from keys.signing import signing_key_from_seed
from keys.suites import Suite

DEFAULT_CACHE_SIZE = 4096
_KEK_PARTS_LIMIT = 16  # root keys whose header part is remembered; there are a handful


class Keyring:
    """Data keys, field encryption, pseudonyms and the audit signing key, over one provider.

    Every data key is wrapped bound to its owner (the resident id: `wrap(key, owner)`), and
    unwrapped only for that owner (`unwrap(wrapped, owner)`): a wrapped key moved to another
    resident's row does not unwrap there. Unwrapped data keys are cached (bounded, first-in
    first-out, keyed by the wrapped bytes, checked against the owner asked for) so a pull does
    not re-unwrap and rebuild cipher objects per field; `forget` drops one at erasure.
    Pseudonym keys are resolved once per purpose, agreement and version; after rotating a
    purpose key in this process call `refresh()` (another process: restart).
    """

    def __init__(
        self,
        provider: KeyProvider,
        suite: Suite = Suite.INTL,
        *,
        production: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if production and provider.is_development:
            raise DevelopmentKeyringError(
                "this keyring was generated for development; production mode refuses it"
            )
        self.provider = provider
        self.suite = suite
        self._audit_key_name = provider.audit_key_name
        # plain dicts: single operations are atomic under the GIL, so no lock on the hot path
        self._cache: dict[bytes, DataKey] = {}
        self._cache_size = cache_size
        # keyed by (purpose value, scope, version): str keys hash in C, Enum members do not
        self._pseudonym_keys: dict[tuple[str, str, int | None], PseudonymKey] = {}
        self._case_keys: dict[tuple[str, int | None], PseudonymKey] = {}
        # current-version agreement keys by agreement id alone: no tuple built per case
        self._current_case_keys: dict[str, PseudonymKey] = {}
        # the current audit pseudonym key: one per case of every audited response
        self._current_audit_key: PseudonymKey | None = None
        # (root key id, version, suite value) -> that root key's part of a wrapped-key header
        self._kek_parts: dict[tuple[str, int, str], bytes] = {}

    @property
    def is_development(self) -> bool:
        return self.provider.is_development

    # -- data keys ------------------------------------------------------------------------
    def current_root(self) -> RootKey:
        return self.provider.root_key(self.suite)

    def new_data_key(self, owner: str, version: int = 1) -> tuple[DataKey, WrappedKey]:
        """A fresh data key for `owner` (a resident id) and its wrap, bound to that owner."""
        key = DataKey.generate(self.suite, version, owner)
        return key, self.wrap(key, owner)

    def wrap(self, key: DataKey, owner: str, root: RootKey | None = None) -> WrappedKey:
        root = root or self.current_root()
        header_bytes, blob = self._wrapped_parts(key, owner, root)
        header = WrappedHeader.of(
            root.suite, root.key_id, root.version, key.suite, key.key_id, key.version
        )
        # built from the header just made: no need to parse it back (one per imported resident)
        return WrappedKey.assemble(header, header_bytes, blob)

    def wrap_bytes(self, key: DataKey, owner: str, root: RootKey) -> bytes:
        """`wrap(key, owner, root).to_bytes()` without the WrappedKey and WrappedHeader
        objects: what a bulk insert stores, once per new resident."""
        header_bytes, blob = self._wrapped_parts(key, owner, root)
        if not blob:
            raise FormatError("wrapped key truncated or malformed")
        return header_bytes + blob

    def _wrapped_parts(self, key: DataKey, owner: str, root: RootKey) -> tuple[bytes, bytes]:
        """(header, provider blob) of `key` wrapped under `root` for `owner`; the associated
        data is the header followed by the framed owner id."""
        # the root key's half of the header, built once per root key rather than per wrap; the
        # Enum member is keyed by its value, which hashes in C
        kek_bytes = self._kek_parts.get((root.key_id, root.version, root.suite._value_))
        if kek_bytes is None:
            kek_bytes = self._kek_part(root.suite, root.key_id, root.version)
        # the data key's half is its label (suite | id | version)
        header_bytes = kek_bytes + key.label
        return header_bytes, root.wrap(key.material(), header_bytes + owner_binding(owner))

    def _kek_part(self, suite: Suite, key_id: str, version: int) -> bytes:
        part = kek_part(suite, key_id, version)
        if len(self._kek_parts) >= _KEK_PARTS_LIMIT:
            self._kek_parts.clear()
        self._kek_parts[(key_id, version, suite._value_)] = part
        return part

    def unwrap(self, wrapped: WrappedKey, owner: str) -> DataKey:
        """The data key of `owner`'s row; DecryptionError if the wrap belongs to another."""
        cached = self._cache.get(wrapped.data)
        if cached is not None and cached.owner == owner:
            return cached
        key = self._unwrap_uncached(wrapped, owner)
        cache = self._cache
        if len(cache) >= self._cache_size:
            cache.pop(next(iter(cache), b""), None)
        cache[wrapped.data] = key
        return key

    def unwrap_stored(self, data: bytes, owner: str) -> DataKey:
        """`unwrap(WrappedKey.from_bytes(data), owner)`, skipping the parse when the key is
        cached: what a pull does once per record with the wrapped key it read from the
        database."""
        if type(data) is not bytes:
            data = bytes(data)
        cached = self._cache.get(data)
        if cached is not None and cached.owner == owner:
            return cached
        return self.unwrap(WrappedKey.from_bytes(data), owner)

    def _unwrap_uncached(self, wrapped: WrappedKey, owner: str) -> DataKey:
        h = wrapped.header
        root = self.provider.root_key(h.kek_suite, h.kek_id, h.kek_version)
        try:
            associated = wrapped.associated_data(owner)
        except FormatError:
            raise DecryptionError() from None
        material = root.unwrap(wrapped.blob, associated)
        try:
            return DataKey(h.data_key_id, h.data_key_version, h.data_suite, material, owner)
        except Exception:
            raise DecryptionError() from None

    def rewrap(self, wrapped: WrappedKey, owner: str) -> WrappedKey:
        """The same data key wrapped under the current root key, bound to `owner` (root-key
        rotation; it also moves an unbound format-1 wrap to format 2)."""
        return self.wrap(self._unwrap_uncached(wrapped, owner), owner)

    def needs_rewrap(self, wrapped: WrappedKey) -> bool:
        """Not under the current root key, or not bound to its owner."""
        root = self.current_root()
        h = wrapped.header
        return not h.bound or (h.kek_id, h.kek_version, h.kek_suite) != (
            root.key_id, root.version, root.suite)

    def forget(self, wrapped: WrappedKey) -> None:
        """Drop an unwrapped key from memory (crypto-shredding, rotation)."""
        self._cache.pop(wrapped.data, None)

    def clear_cache(self) -> None:
        self._cache.clear()

    def refresh(self) -> None:
        """Forget every cached key, so the provider's current versions are read again."""
        self._cache.clear()
        self._pseudonym_keys.clear()
        self._case_keys.clear()
        self._current_case_keys.clear()
        self._current_audit_key = None

    # -- fields ---------------------------------------------------------------------------
    def encrypt_field(
        self, data_key: DataKey, plaintext: str, context: FieldContext
    ) -> EncryptedValue:
        return fields.encrypt(data_key, plaintext, context)

    # Several columns of one row at once (an import): row framing computed once per row.
    #   encrypt_row(data_key, table, row_id, {column: plaintext}) -> {column: EncryptedValue}
    encrypt_row = staticmethod(fields.encrypt_row)

    # A bulk insert: the stored bytes, in column order, no EncryptedValue per field:
    #   encrypt_row_bytes(data_key, table, row_id, (column, ...), (plaintext | None, ...))
    #       -> [bytes | None, ...]
    encrypt_row_bytes = staticmethod(fields.encrypt_row_bytes)

    # The hot path of a pull: bound straight to the cipher function, no extra call layer.
    decrypt_field = staticmethod(fields.decrypt)

    # Several columns of one row at once (a pull): row framing computed once per row.
    #   decrypt_row(data_key, table, row_id, {column: EncryptedValue}) -> {column: plaintext}
    decrypt_row = staticmethod(fields.decrypt_row)

    # A pull straight from the stored column bytes, no EncryptedValue per field:
    #   plan = stored_columns(table, (column, ...))   (once; the same object for the same args)
    #   decrypt_stored_row(data_key, plan, row_id, (bytes | None, ...)) -> {column: plaintext}
    stored_columns = staticmethod(fields.stored_columns)
    decrypt_stored_row = staticmethod(fields.decrypt_stored_row)

    # -- pseudonyms -----------------------------------------------------------------------
    def _key(self, purpose: Purpose, scope: str, version: int | None) -> PseudonymKey:
        key = self._pseudonym_keys.get((purpose.value, scope, version))
        if key is None:
            secret = self.provider.secret(purpose, version)
            if purpose is Purpose.CASE_PSEUDONYM:
                key = pseudonyms.agreement_key(self.suite, secret.material, scope)
            elif purpose is Purpose.BLIND_INDEX:
                key = pseudonyms.blind_index_key(self.suite, secret.material,
                                                 BlindIndexField(scope))
            else:
                label = b"exchange/" + purpose.value.encode("ascii") + b"/v1"
                key = pseudonyms.purpose_key(self.suite, secret.material, label)
            self._pseudonym_keys[(purpose.value, scope, version)] = key
        return key

    def case_key(self, agreement_id: str, version: int | None = None) -> PseudonymKey:
        """The agreement's HMAC key object; hold it across a page to skip the lookups."""
        key = self._case_keys.get((agreement_id, version))
        if key is None:
            key = self._key(Purpose.CASE_PSEUDONYM, agreement_id, version)
            self._case_keys[(agreement_id, version)] = key
        return key

    def case_reference(
        self, agreement_id: str, resident_id: str, version: int | None = None
    ) -> str:
        if version is None:
            key = self._current_case_keys.get(agreement_id)
            if key is None:
                key = self._current_case_keys[agreement_id] = self.case_key(agreement_id)
            return key.reference(resident_id)
        return self.case_key(agreement_id, version).reference(resident_id)

    def blind_index(self, value: str, version: int | None = None, *,
                    field: BlindIndexField = BlindIndexField.NATIONAL_ID) -> str:
        """The keyed blind index of an ID number (the default) or of a mobile number
        (`field=BlindIndexField.PHONE`), normalised first. Each field has its own HMAC key
        derived from the blind-index secret, so the two indexes of one value never compare."""
        key = self._key(Purpose.BLIND_INDEX, field.value, version)
        if field is BlindIndexField.PHONE:
            return pseudonyms.blind_index(key, normalise_mobile(value))
        return pseudonyms.blind_index(key, normalise_national_id(value))

    def audit_pseudonym(self, resident_id: str, version: int | None = None) -> str:
        if version is None:  # the hot path: no enum value read, no tuple built per case
            key = self._current_audit_key
            if key is None:
                key = self._current_audit_key = self._key(Purpose.AUDIT_PSEUDONYM, "", None)
            return key.reference(resident_id)
        return self._key(Purpose.AUDIT_PSEUDONYM, "", version).reference(resident_id)

    # -- audit signing --------------------------------------------------------------------
    def audit_signing_key(self, version: int | None = None) -> Ed25519PrivateKey:
        return signing_key_from_seed(self.provider.secret(Purpose.AUDIT_SIGNING, version).material)

    @property
    def audit_key_name(self) -> str:
        return self._audit_key_name

    @audit_key_name.setter
    def audit_key_name(self, name: str) -> None:
        check_key_name(name)
        self._audit_key_name = name

    def __repr__(self) -> str:
        return f"Keyring(suite={self.suite.value}, development={self.is_development})"
