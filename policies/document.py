"""Policy documents: parse a TOML text, validate it against the catalogue, build a Policy.

Every defect found is reported (file, line, field, message) in one PolicyLoadError; a
document either loads whole or not at all. The never-share check runs before any other
check on a field's source, so a policy naming one is refused whatever its transform.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from policies import conditions
from policies.catalogue import (
    NEVER_SHARE,
    SOURCE_FIELDS,
    ConsentScope,
    Kind,
    LegalBasis,
    Purpose,
)
from policies.conditions import Condition
from policies.errors import PolicyLoadError, Problem
from policies.identity import policy_identity
from policies.results import PolicyIdentity
from policies.sourcemap import SourceMap, syntax_error_line
from policies.transforms import TRANSFORMS

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TOP_KEYS = frozenset({"id", "version", "title", "purpose", "legal_basis", "consent", "fields"})
_LEGAL_KEYS = frozenset({"kind", "reference"})
_CONSENT_KEYS = frozenset({"scopes", "required"})
_FIELD_KEYS = frozenset({"source", "transform", "sealed", "when", "description"})


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One output field: where it comes from, how it is transformed, when it is shared."""

    name: str
    source: str
    transform: str
    sealed: bool
    conditions: tuple[Condition, ...]
    description: str
    line: int

    @property
    def scope(self) -> ConsentScope | None:
        return SOURCE_FIELDS[self.source].scope

    @property
    def discloses(self) -> bool:
        return self.transform != "drop"


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy document."""

    identity: PolicyIdentity
    purpose: Purpose
    title: str
    legal_basis: LegalBasis
    legal_reference: str
    consent_scopes: frozenset[ConsentScope]
    required_scopes: frozenset[ConsentScope]
    fields: tuple[FieldRule, ...]
    file: str

    @property
    def id(self) -> str:
        return self.identity.id

    @property
    def version(self) -> int:
        return self.identity.version


class _Checker:
    """Collects problems while reading one parsed document."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.map = SourceMap(text)
        self.problems: list[Problem] = []

    def fail(self, path: tuple[str, ...], message: str, field: str = "") -> None:
        line = self.map.line_of(*path) or 1
        self.problems.append(Problem(self.file, line, field or ".".join(path), message))

    def unknown_keys(
        self,
        table: Mapping[str, object],
        allowed: frozenset[str],
        at: tuple[str, ...],
        field: str = "",
    ) -> None:
        for key in table:
            if key not in allowed:
                self.fail(
                    (*at, key),
                    f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                    field,
                )

    def string(
        self, doc: Mapping[str, object], key: str, at: tuple[str, ...] = (), required: bool = True
    ) -> str:
        value = doc.get(key)
        if value is None:
            if required:
                self.fail(at or (key,), f"missing required key {key!r}")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail((*at, key), f"{key!r} must be a non-empty string")
            return ""
        return value

    def scopes(self, value: object, path: tuple[str, ...]) -> frozenset[ConsentScope]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, "must be a list of consent scope names")
            return frozenset()
        known = {s.value for s in ConsentScope}
        found: set[ConsentScope] = set()
        for name in value:
            if name in known:
                found.add(ConsentScope(name))
            else:
                self.fail(
                    path, f"unknown consent scope {name!r} (known: {', '.join(sorted(known))})"
                )
        if len(found) != len(value) and all(v in known for v in value):
            self.fail(path, "consent scope listed twice")
        return frozenset(found)


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    """Parse and validate one policy document; raises PolicyLoadError naming file and line."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyLoadError(
            (Problem(file, syntax_error_line(str(exc)), "", f"TOML syntax error: {exc}"),)
        ) from None
    check = _Checker(file, text)
    check.unknown_keys(doc, _TOP_KEYS, ())

    policy_id = check.string(doc, "id")
    if policy_id and not _ID.fullmatch(policy_id):
        check.fail(("id",), "id must be 3-64 chars of a-z, 0-9, '.', '_', '-'")
    version = doc.get("version")
    if version is None:
        check.fail(("version",), "missing required key 'version'")
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        check.fail(("version",), "version must be a positive integer")
    title = check.string(doc, "title", required=False)

    purpose_name = check.string(doc, "purpose")
    purpose: Purpose | None = None
    if purpose_name:
        try:
            purpose = Purpose(purpose_name)
        except ValueError:
            known = ", ".join(p.value for p in Purpose)
            check.fail(("purpose",), f"unknown purpose {purpose_name!r} (known: {known})")

    legal = doc.get("legal_basis")
    basis: LegalBasis | None = None
    reference = ""
    if not isinstance(legal, dict):
        check.fail(("legal_basis",), "missing [legal_basis] table (kind, reference)")
    else:
        check.unknown_keys(legal, _LEGAL_KEYS, ("legal_basis",))
        kind = check.string(legal, "kind", ("legal_basis",))
        reference = check.string(legal, "reference", ("legal_basis",))
        if kind:
            try:
                basis = LegalBasis(kind)
            except ValueError:
                check.fail(("legal_basis", "kind"), f"unknown legal basis {kind!r}")

    consent = doc.get("consent")
    scopes: frozenset[ConsentScope] = frozenset()
    required: frozenset[ConsentScope] = frozenset()
    if not isinstance(consent, dict):
        check.fail(("consent",), "missing [consent] table (scopes, required)")
    else:
        check.unknown_keys(consent, _CONSENT_KEYS, ("consent",))
        if "scopes" not in consent:
            check.fail(("consent",), "missing required key 'scopes'")
        else:
            scopes = check.scopes(consent["scopes"], ("consent", "scopes"))
            if not scopes and isinstance(consent["scopes"], list) and not consent["scopes"]:
                check.fail(
                    ("consent", "scopes"), "a policy must name the consent scopes it relies on"
                )
        required = check.scopes(consent.get("required", []), ("consent", "required"))
        for scope in sorted(required - scopes):
            check.fail(("consent", "required"), f"required scope {scope.value!r} is not in scopes")

    rules = _fields(check, doc.get("fields"), scopes)

    if check.problems:
        raise PolicyLoadError(tuple(check.problems))
    assert purpose is not None and basis is not None and isinstance(version, int)  # noqa: S101
    return Policy(
        identity=policy_identity(policy_id, version, doc),
        purpose=purpose,
        title=title,
        legal_basis=basis,
        legal_reference=reference,
        consent_scopes=scopes,
        required_scopes=required,
        fields=rules,
        file=file,
    )


def _fields(
    check: _Checker, table: object, scopes: frozenset[ConsentScope]
) -> tuple[FieldRule, ...]:
    if not isinstance(table, dict) or not table:
        check.fail(("fields",), "a policy must list at least one [fields.NAME] table")
        return ()
    rules: list[FieldRule] = []
    for name, spec in table.items():
        rule = _field(check, name, spec, scopes)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _field(
    check: _Checker, name: str, spec: object, scopes: frozenset[ConsentScope]
) -> FieldRule | None:
    at = ("fields", name)
    before = len(check.problems)
    if not _FIELD_NAME.fullmatch(name):
        check.fail(at, "field name must be lower_snake_case", name)
    if not isinstance(spec, dict):
        check.fail(at, "must be a table with source and transform", name)
        return None
    check.unknown_keys(spec, _FIELD_KEYS, at, name)

    source = spec.get("source")
    transform_name = spec.get("transform")
    source_info = None
    if not isinstance(source, str):
        check.fail(at, "missing required key 'source' (a catalogue field name)", name)
    elif source in NEVER_SHARE:
        check.fail(
            (*at, "source"),
            f"source {source!r} is never-share and is refused whatever the transform",
            name,
        )
    elif source not in SOURCE_FIELDS:
        check.fail((*at, "source"), f"unknown source field {source!r}", name)
    elif SOURCE_FIELDS[source].kind is Kind.ADDRESS_PART:
        check.fail(
            (*at, "source"),
            f"{source!r} is part of the address: "
            'use source = "address" with an address_* transform',
            name,
        )
    else:
        source_info = SOURCE_FIELDS[source]

    transform = None
    if not isinstance(transform_name, str):
        check.fail(at, "missing required key 'transform'", name)
    elif transform_name not in TRANSFORMS:
        check.fail(
            (*at, "transform"),
            f"unknown transform {transform_name!r} (known: {', '.join(sorted(TRANSFORMS))})",
            name,
        )
    else:
        transform = TRANSFORMS[transform_name]

    sealed = spec.get("sealed", False)
    if not isinstance(sealed, bool):
        check.fail((*at, "sealed"), "sealed must be true or false", name)
        sealed = False

    if source_info is not None and transform is not None:
        if source_info.kind not in transform.kinds:
            check.fail(
                (*at, "transform"),
                f"transform {transform.name!r} cannot read {source_info.name!r} "
                f"(a {source_info.kind.value})",
                name,
            )
        if transform.must_seal and not sealed:
            check.fail(
                (*at, "transform"),
                f"transform {transform.name!r} discloses contact detail in full: "
                "the field must be sealed = true",
                name,
            )
    if (
        source_info is not None
        and source_info.scope is not None
        and source_info.scope not in scopes
    ):
        check.fail(
            (*at, "source"),
            f"{source_info.name!r} needs consent scope {source_info.scope.value!r}, "
            "which [consent] scopes does not list",
            name,
        )

    description = spec.get("description", "")
    if not isinstance(description, str):
        check.fail((*at, "description"), "description must be a string", name)
        description = ""

    parsed = _conditions(check, at, name, spec.get("when", {}))
    if len(check.problems) > before or source_info is None or transform is None:
        return None
    return FieldRule(
        name, source_info.name, transform.name, sealed, parsed, description, check.map.line_of(*at)
    )


def _conditions(
    check: _Checker, at: tuple[str, ...], name: str, when: object
) -> tuple[Condition, ...]:
    if not isinstance(when, dict):
        check.fail((*at, "when"), "when must be a table of conditions", name)
        return ()
    found: list[Condition] = []
    for key, arg in when.items():
        path = (*at, "when", key)
        if key in conditions.INT_CONDITIONS:
            low, high = conditions.INT_CONDITIONS[key]
            if not isinstance(arg, int) or isinstance(arg, bool) or not low <= arg <= high:
                check.fail(path, f"{key} must be an integer from {low} to {high}", name)
                continue
            found.append(Condition(key, arg))
        elif key in conditions.LIST_CONDITIONS:
            vocabulary = conditions.LIST_CONDITIONS[key]
            if (
                not isinstance(arg, list)
                or not arg
                or not all(isinstance(v, str) and v in vocabulary for v in arg)
            ):
                check.fail(
                    path,
                    f"{key} must be a non-empty list drawn from: {', '.join(sorted(vocabulary))}",
                    name,
                )
                continue
            found.append(Condition(key, tuple(dict.fromkeys(arg))))
        else:
            check.fail(
                path,
                f"unknown condition {key!r} (known: {', '.join(sorted(conditions.KNOWN))})",
                name,
            )
    return tuple(found)


def load_policy(path: str | Path) -> Policy:
    """Read and validate one policy file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(
            (Problem(file, 0, "", f"cannot read: {type(exc).__name__}"),)
        ) from None
    return parse_policy(text, file)
