"""Audit entries and their canonical RFC 8785 encoding (the bytes the Merkle tree commits to).

An entry names who did what to which pseudonymous subjects under which agreement, purpose,
policy and consents, and which fields were disclosed or withheld - by *name*, never by value.
Every identifier is checked against a strict alphabet and refused if it looks like a national ID
or mobile number, so personal values cannot slip into the log.

`details` records what an action was asked and what it counted (a file's hash, row counts, a
statistics query's dimensions, a certificate thumbprint): names, identifiers, integers and
booleans only, never free text, a personal value or a released statistic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

import rfc8785

from audit.errors import EntryError

FORMAT_VERSION: Final = 1
# An entry with details is format 2: the same keys plus "details". Entries without details keep
# format 1 and their exact bytes, so logs written before details existed verify unchanged.
DETAILS_FORMAT_VERSION: Final = 2
MAX_DETAILS: Final = 32
ROLES: Final = frozenset({"office_admin", "community_cadre", "contractor", "auditor", "system"})
RESULTS: Final = frozenset({"ok", "denied", "error"})

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")
# base64url pseudonyms (keys/) may begin with "-" or "_"
_IDENT = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._:/+=\-]{0,127}\Z")
# Shapes of personal identifiers that must never become an audit identifier: a national ID
# number, a mobile number (one pattern, one match call per identifier).
_PERSONAL = re.compile(r"(?:\d{17}[\dXx]|1[3-9]\d{9})\Z")
# Names are a small vocabulary (actions, fields, reasons, purposes) checked once per process;
# bounded so a caller inventing names cannot grow it without limit.
_KNOWN_NAMES: set[str] = set()
_KNOWN_NAMES_MAX = 4096
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Action:
    """Well-known actions (any dotted lower-case name is accepted)."""

    DISCLOSE: Final = "case.disclose"
    REVEAL: Final = "case.reveal"
    TOMBSTONE: Final = "case.tombstone"
    DELETION_ACK: Final = "case.deletion_ack"
    CONSENT_RECORD: Final = "consent.record"
    KEY_CREATE: Final = "key.create"
    KEY_ROTATE: Final = "key.rotate"
    KEY_DESTROY: Final = "key.destroy"
    AUDIT_READ: Final = "audit.read"


def _name(value: object, what: str) -> str:
    if type(value) is str and value in _KNOWN_NAMES:
        return value
    if not isinstance(value, str) or len(value) > 64 or not _NAME.match(value):
        raise EntryError(f"{what} must be a dotted lower-case name")
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_MAX:
        _KNOWN_NAMES.add(value)
    return value


def _ident(value: object, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise EntryError(f"{what} must be an identifier of 1-128 characters [A-Za-z0-9._:/+=-]")
    if _PERSONAL.match(value):
        raise EntryError(f"{what} looks like a personal identifier and is refused")
    return value


def _opt_ident(value: object, what: str) -> str | None:
    return None if value is None else _ident(value, what)


def _names(values: Iterable[object], what: str) -> tuple[str, ...]:
    out = tuple([_name(v, what) for v in values])
    if len(set(out)) != len(out):
        raise EntryError(f"{what} lists a name twice")
    return out


DetailValue: TypeAlias = "int | bool | str | tuple[str, ...]"
# The verifier finds an entry's own index as the first ',"index":' in its bytes; a detail named
# "index" would put one before it.
_RESERVED_DETAILS: Final = frozenset({"index"})


def _detail_value(value: object, what: str) -> DetailValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not 0 <= value < 2**53:
            raise EntryError(f"{what} must be an integer in 0..2**53-1")
        return value
    if isinstance(value, str):
        return _ident(value, what)
    if isinstance(value, tuple | list):
        out = tuple([_ident(v, what) for v in value])
        if len(out) > MAX_DETAILS:
            raise EntryError(f"{what} lists more than {MAX_DETAILS} values")
        return out
    raise EntryError(f"{what} must be an integer, a boolean, an identifier or a list of them")


class Details(Mapping[str, DetailValue]):
    """The checked, immutable, name-sorted details of an entry (hashable, like the entry)."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        items: list[tuple[str, DetailValue]] = []
        for name, value in (values or {}).items():
            _name(name, "details name")
            if name in _RESERVED_DETAILS:
                raise EntryError(f"details may not use the reserved name {name!r}")
            items.append((name, _detail_value(value, f"details.{name}")))
        if len(items) > MAX_DETAILS:
            raise EntryError(f"details hold at most {MAX_DETAILS} names")
        items.sort()
        self._items: tuple[tuple[str, DetailValue], ...] = tuple(items)

    def __getitem__(self, name: str) -> DetailValue:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Details):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Details({dict(self._items)!r})"

    def canonical(self) -> str:
        """The RFC 8785 text of the details object (names sorted; ASCII checked above)."""
        return "{" + ",".join([f'"{k}":{_detail_json(v)}' for k, v in self._items]) + "}"

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._items}


def _detail_json(value: DetailValue) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return "%d" % value  # noqa: UP031
    if isinstance(value, str):
        return f'"{value}"'
    return _strings(value)


NO_DETAILS: Final = Details()


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    role: str

    def __post_init__(self) -> None:
        _ident(self.id, "actor.id")
        if self.role not in ROLES:
            raise EntryError(f"actor.role must be one of {sorted(ROLES)}")


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """The policy identity the decision was made under."""

    id: str
    version: str
    digest: str

    def __post_init__(self) -> None:
        _ident(self.id, "policy.id")
        _ident(self.version, "policy.version")
        _ident(self.digest, "policy.digest")


@dataclass(frozen=True, slots=True)
class Withheld:
    field: str
    reason: str

    def __post_init__(self) -> None:
        _name(self.field, "withheld.field")
        _name(self.reason, "withheld.reason")


def _checked_fields(
    disclosed: Iterable[object], withheld: Iterable[object]
) -> tuple[tuple[str, ...], tuple[Withheld, ...]]:
    names = _names(disclosed, "subject.disclosed")
    held: list[Withheld] = []
    fields = set(names)
    for w in withheld:
        if not isinstance(w, Withheld):
            raise EntryError("subject.withheld must hold Withheld values")
        if w.field in fields:
            raise EntryError("a field is both disclosed and withheld, or withheld twice")
        fields.add(w.field)
        held.append(w)
    return names, tuple(held)


@dataclass(frozen=True, slots=True)
class FieldNames:
    """The fields a subject names as disclosed and withheld, checked and encoded once.

    The subjects of one disclosure share a handful of these (one per decision pattern of the
    policy), so a subject built from one (`Subject.naming`) neither re-checks nor re-encodes a
    name; its bytes are exactly those of the same subject built field by field.
    """

    disclosed: tuple[str, ...] = ()
    withheld: tuple[Withheld, ...] = ()
    # the canonical JSON of the disclosed and withheld arrays
    _json: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        disclosed, withheld = _checked_fields(self.disclosed, self.withheld)
        object.__setattr__(self, "disclosed", disclosed)
        object.__setattr__(self, "withheld", withheld)
        object.__setattr__(self, "_json", (_strings(disclosed), _withheld_json(withheld)))


@dataclass(frozen=True, slots=True)
class Subject:
    """One resident touched by the action, by audit pseudonym (never an identity)."""

    pseudonym: str
    case: str | None = None
    disclosed: tuple[str, ...] = ()
    withheld: tuple[Withheld, ...] = ()
    consents: tuple[str, ...] = ()
    # the encoded field arrays when built from a FieldNames (None: encode them from the tuples)
    _fields: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _ident(self.pseudonym, "subject.pseudonym")
        _opt_ident(self.case, "subject.case")
        disclosed, withheld = _checked_fields(self.disclosed, self.withheld)
        consents = tuple(self.consents)
        for c in consents:
            _ident(c, "subject.consents")
        object.__setattr__(self, "disclosed", disclosed)
        object.__setattr__(self, "withheld", withheld)
        object.__setattr__(self, "consents", consents)

    @classmethod
    def naming(
        cls,
        pseudonym: str,
        case: str | None,
        names: FieldNames,
        consents: Iterable[str] = (),
    ) -> Subject:
        """The subject with `names` (already checked): only its identifiers are checked."""
        if not isinstance(names, FieldNames):
            raise EntryError("names must be FieldNames")
        subject = object.__new__(cls)
        put = object.__setattr__
        put(subject, "pseudonym", _ident(pseudonym, "subject.pseudonym"))
        put(subject, "case", _opt_ident(case, "subject.case"))
        put(subject, "disclosed", names.disclosed)
        put(subject, "withheld", names.withheld)
        held = tuple(consents)
        for c in held:
            _ident(c, "subject.consents")
        put(subject, "consents", held)
        put(subject, "_fields", names._json)
        return subject


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key lifecycle event: identity and type only, never key material."""

    key_id: str
    version: int
    type: str

    def __post_init__(self) -> None:
        _ident(self.key_id, "key.id")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise EntryError("key.version must be a non-negative integer")
        _name(self.type, "key.type")


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str = "ok"
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise EntryError(f"outcome.result must be one of {sorted(RESULTS)}")
        if self.reason is not None:
            _name(self.reason, "outcome.reason")
        if self.result != "ok" and self.reason is None:
            raise EntryError("a denial or error must carry a reason code")


OK: Final = Outcome()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened; the log assigns the index when it appends."""

    time: datetime
    actor: Actor
    action: str
    subjects: tuple[Subject, ...] = ()
    agreement: str | None = None
    purpose: str | None = None
    policy: PolicyRef | None = None
    key: KeyEvent | None = None
    request_id: str | None = None
    outcome: Outcome = field(default=OK)
    details: Mapping[str, DetailValue] = field(default=NO_DETAILS)
    # The canonical bytes around the index, computed once here, when the value is checked:
    # appends then only splice the index in, inside the head lock every broker queues for.
    _canonical: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise EntryError("time must be a timezone-aware datetime")
        if self.time.tzinfo is not UTC:
            object.__setattr__(self, "time", self.time.astimezone(UTC))
        if not isinstance(self.actor, Actor):
            raise EntryError("actor must be an Actor")
        _name(self.action, "action")
        object.__setattr__(self, "subjects", tuple(self.subjects))
        if not all(isinstance(s, Subject) for s in self.subjects):
            raise EntryError("subjects must hold Subject values")
        _opt_ident(self.agreement, "agreement")
        if self.purpose is not None:
            _name(self.purpose, "purpose")
        _opt_ident(self.request_id, "request_id")
        if not isinstance(self.outcome, Outcome):
            raise EntryError("outcome must be an Outcome")
        if not isinstance(self.details, Details):
            if not isinstance(self.details, Mapping):
                raise EntryError("details must be a mapping of names to values")
            object.__setattr__(self, "details", Details(self.details))
        object.__setattr__(self, "_canonical", _halves(self))

    @property
    def format_version(self) -> int:
        return DETAILS_FORMAT_VERSION if self.details else FORMAT_VERSION

    @property
    def pseudonyms(self) -> tuple[str, ...]:
        return tuple(s.pseudonym for s in self.subjects)


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    """An entry at its place in the log, with the exact bytes the tree commits to."""

    index: int
    entry: AuditEntry
    canonical: bytes


def format_time(t: datetime) -> str:
    """RFC 3339 UTC with microseconds and a Z: '2025-01-31T08:00:00.000000Z'."""
    if t.tzinfo is not UTC and t.utcoffset():
        t = t.astimezone(UTC)
    # %-formatting of one tuple measured fastest (isoformat(timespec=...) parses its keyword)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)


def to_json(index: int, entry: AuditEntry) -> dict[str, Any]:
    """The JSON value of an entry at `index` (before canonicalisation)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise EntryError("index must be a non-negative integer")
    p, k = entry.policy, entry.key
    doc: dict[str, Any] = {
        "v": entry.format_version,
        "index": index,
        "time": format_time(entry.time),
        "actor": {"id": entry.actor.id, "role": entry.actor.role},
        "action": entry.action,
        "agreement": entry.agreement,
        "purpose": entry.purpose,
        "policy": None if p is None else {"id": p.id, "version": p.version, "digest": p.digest},
        "subjects": [
            {
                "pseudonym": s.pseudonym,
                "case": s.case,
                "disclosed": list(s.disclosed),
                "withheld": [{"field": w.field, "reason": w.reason} for w in s.withheld],
                "consents": list(s.consents),
            }
            for s in entry.subjects
        ],
        "key": None if k is None else {"id": k.key_id, "version": k.version, "type": k.type},
        "request": entry.request_id,
        "outcome": {"result": entry.outcome.result, "reason": entry.outcome.reason},
    }
    if entry.details:
        assert isinstance(entry.details, Details)  # normalised at construction
        doc["details"] = entry.details.to_json()
    return doc


def encode(index: int, entry: AuditEntry) -> bytes:
    """Canonical RFC 8785 bytes of the entry at `index`.

    Every string in an entry is validated to printable ASCII without quote or backslash, every
    key is ASCII and every number an integer below 2**53; for such values RFC 8785 output is the
    compact JSON below with keys in sorted order, written directly for speed.
    `encode_reference` (the rfc8785 package) is the definition: property tests hold the two
    equal and `decode` checks against it.
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**53:
        raise EntryError("index must be a non-negative integer below 2**53")
    head, tail = entry._canonical
    return head + b"%d" % index + tail


def _s(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _strings(values: tuple[str, ...]) -> str:
    # one join, no generator: this runs several times inside the head lock of every append
    return '["' + '","'.join(values) + '"]' if values else "[]"


def _withheld_json(withheld: tuple[Withheld, ...]) -> str:
    return "[" + ",".join([f'{{"field":"{w.field}","reason":"{w.reason}"}}'
                           for w in withheld]) + "]"


def _subject(s: Subject) -> str:
    fields = s._fields
    if fields is None:
        disclosed, withheld = _strings(s.disclosed), _withheld_json(s.withheld)
    else:
        disclosed, withheld = fields
    return (f'{{"case":{_s(s.case)},"consents":{_strings(s.consents)},'
            f'"disclosed":{disclosed},"pseudonym":"{s.pseudonym}",'
            f'"withheld":{withheld}}}')


def _halves(e: AuditEntry) -> tuple[bytes, bytes]:
    """The canonical bytes before and after the index's digits (keys in RFC 8785 order, which
    is ASCII sort, at every level)."""
    p, k, o = e.policy, e.key, e.outcome
    policy = "null" if p is None else (
        f'{{"digest":"{p.digest}","id":"{p.id}","version":"{p.version}"}}')
    key = "null" if k is None else f'{{"id":"{k.key_id}","type":"{k.type}","version":{k.version}}}'
    subjects = ",".join([_subject(s) for s in e.subjects])
    details = ""
    if e.details:
        assert isinstance(e.details, Details)  # normalised at construction
        details = f'"details":{e.details.canonical()},'
    head = (f'{{"action":"{e.action}","actor":{{"id":"{e.actor.id}","role":"{e.actor.role}"}},'
            f'"agreement":{_s(e.agreement)},{details}"index":')
    tail = (f',"key":{key},"outcome":{{"reason":{_s(o.reason)},"result":"{o.result}"}},'
            f'"policy":{policy},"purpose":{_s(e.purpose)},"request":{_s(e.request_id)},'
            f'"subjects":[{subjects}],"time":"{format_time(e.time)}","v":{e.format_version}}}')
    return head.encode("ascii"), tail.encode("ascii")


def encode_reference(index: int, entry: AuditEntry) -> bytes:
    """The same bytes through the rfc8785 package (slow, the definition)."""
    if index >= 2**53:
        raise EntryError("index is beyond the exactly representable range")
    return bytes(rfc8785.dumps(to_json(index, entry)))




def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise EntryError("duplicate key in entry JSON")
    return out


def _obj(value: object, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise EntryError(f"{what} must be an object with keys {sorted(keys)}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise EntryError(f"{what} must be a list")
    return value


_TOP = {"v", "index", "time", "actor", "action", "agreement", "purpose", "policy", "subjects",
        "key", "request", "outcome"}


def from_json(doc: object) -> tuple[int, AuditEntry]:
    version = doc.get("v") if isinstance(doc, dict) else None
    if version == DETAILS_FORMAT_VERSION:
        d = _obj(doc, "entry", _TOP | {"details"})
        details = d["details"]
        if not isinstance(details, dict) or not details:
            raise EntryError("a format 2 entry carries a non-empty details object")
    elif version == FORMAT_VERSION:
        d = _obj(doc, "entry", _TOP)
        details = {}
    else:
        raise EntryError(f"unsupported entry format version {version!r}")
    index = d["index"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise EntryError("index must be a non-negative integer")
    try:
        time = datetime.strptime(d["time"], _TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise EntryError("time must look like 2025-01-31T08:00:00.000000Z") from None
    actor = _obj(d["actor"], "actor", {"id", "role"})
    policy = d["policy"]
    if policy is not None:
        policy = _obj(policy, "policy", {"id", "version", "digest"})
    key = d["key"]
    if key is not None:
        key = _obj(key, "key", {"id", "version", "type"})
    outcome = _obj(d["outcome"], "outcome", {"result", "reason"})
    subjects = []
    for s in _list(d["subjects"], "subjects"):
        s = _obj(s, "subject", {"pseudonym", "case", "disclosed", "withheld", "consents"})
        withheld = tuple(
            Withheld(**_obj(w, "withheld", {"field", "reason"}))
            for w in _list(s["withheld"], "withheld")
        )
        subjects.append(Subject(
            pseudonym=s["pseudonym"], case=s["case"],
            disclosed=tuple(_list(s["disclosed"], "disclosed")), withheld=withheld,
            consents=tuple(_list(s["consents"], "consents")),
        ))
    try:
        entry = AuditEntry(
            time=time,
            actor=Actor(**actor),
            action=d["action"],
            subjects=tuple(subjects),
            agreement=d["agreement"],
            purpose=d["purpose"],
            policy=None if policy is None else PolicyRef(**policy),
            key=None if key is None else KeyEvent(key["id"], key["version"], key["type"]),
            request_id=d["request"],
            outcome=Outcome(**outcome),
            details=Details(details),
        )
    except TypeError:
        raise EntryError("entry has a value of the wrong type") from None
    return index, entry


def decode(data: bytes) -> LoggedEntry:
    """Parse canonical entry bytes; refuse anything that does not re-encode to the same bytes."""
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, EntryError):
            raise
        raise EntryError("entry is not valid UTF-8 JSON") from None
    index, entry = from_json(doc)
    if encode_reference(index, entry) != data:
        raise EntryError(f"entry {index} is not in canonical form")
    return LoggedEntry(index, entry, data)
