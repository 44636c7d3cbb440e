import pytest

from policies import PolicyLoadError, load_policy, parse_policy, shipped_policies
from policies.catalogue import NEVER_SHARE
from policies.identity import HASH_DOMAIN, canonical_bytes
from policies.shipped import shipped_paths
from policies.transforms import TRANSFORMS

HEAD = """\
id = "test.policy"
version = 1
purpose = "home_visit"

[legal_basis]
kind = "entrusted_processing"
reference = "PIPL Art. 21"

[consent]
scopes = ["service_contact", "pregnancy_health", "child_data"]
required = ["service_contact"]
"""
GOOD_FIELD = """
[fields.case_ref]
source = "case.reference"
transform = "case_pseudonym"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyLoadError) as caught:
        parse_policy(text, "p.toml")
    return [str(p) for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_policies_load_one_per_purpose():
    purposes = sorted(p.purpose.value for p in shipped_policies())
    assert purposes == ["class_invitation", "home_visit", "online_guidance"]
    assert len(shipped_paths()) == 3


def test_valid_document_loads():
    policy = parse_policy(HEAD + GOOD_FIELD, "p.toml")
    assert policy.identity.id == "test.policy"
    assert [f.name for f in policy.fields] == ["case_ref"]
    assert policy.fields[0].line == line_of(HEAD + GOOD_FIELD, "[fields.case_ref]")


@pytest.mark.parametrize("source", sorted(NEVER_SHARE))
@pytest.mark.parametrize("transform", ["drop", "as_is", "month", "case_pseudonym"])
def test_never_share_source_refused_whatever_the_transform(source, transform):
    text = HEAD + f'\n[fields.x]\nsource = "{source}"\ntransform = "{transform}"\n'
    found = problems(text)
    line = line_of(text, f'source = "{source}"')
    assert found == [
        f"p.toml:{line}: x: source {source!r} is never-share and is refused whatever the transform"
    ]


def test_hashed_never_share_is_refused_and_the_unknown_transform_reported_too():
    text = HEAD + '\n[fields.id_hash]\nsource = "resident.national_id"\ntransform = "sha256"\n'
    found = problems(text)
    assert any("never-share" in p for p in found)
    assert any("unknown transform 'sha256'" in p for p in found)


def test_unknown_field_and_key_and_transform_named_with_lines():
    text = (
        HEAD
        + GOOD_FIELD
        + (
            '\n[fields.y]\nsource = "resident.shoe_size"\ntransform = "as_is"\n'
            '\n[fields.z]\nsource = "resident.name"\ntransform = "initials"\ncolour = "red"\n'
        )
    )
    found = problems(text)
    assert (
        f"p.toml:{line_of(text, 'shoe_size')}: y: unknown source field 'resident.shoe_size'"
        in found
    )
    assert any(
        p.startswith(f"p.toml:{line_of(text, 'initials')}: z: unknown transform") for p in found
    )
    assert any(
        p.startswith(f"p.toml:{line_of(text, 'colour')}: z: unknown key 'colour'") for p in found
    )


def test_unknown_top_level_key_and_missing_purpose_and_consent():
    text = 'id = "test.policy"\nversion = 1\nowner = "me"\n' + GOOD_FIELD
    found = problems(text)
    assert any(p.startswith("p.toml:3: owner: unknown key 'owner'") for p in found)
    assert any("missing required key 'purpose'" in p for p in found)
    assert any("missing [consent] table" in p for p in found)
    assert any("missing [legal_basis] table" in p for p in found)


def test_empty_consent_scopes_refused():
    text = (
        HEAD.replace(
            'scopes = ["service_contact", "pregnancy_health", "child_data"]', "scopes = []"
        ).replace('required = ["service_contact"]', "")
        + GOOD_FIELD
    )
    found = problems(text)
    assert any("must name the consent scopes" in p for p in found)


def test_field_scope_must_be_listed():
    text = HEAD + '\n[fields.delivered]\nsource = "derived.delivery_month"\ntransform = "as_is"\n'
    (only,) = problems(text)
    assert "needs consent scope 'birth_health'" in only
    assert only.startswith(f"p.toml:{line_of(text, 'derived.delivery_month')}:")


def test_contact_in_full_must_be_sealed():
    text = HEAD + '\n[fields.phone]\nsource = "resident.phone"\ntransform = "phone_full"\n'
    (only,) = problems(text)
    assert "must be sealed = true" in only


@pytest.mark.parametrize(
    ("source", "transform"),
    [
        ("derived.resident_age_band", "as_is"),
        ("derived.infant_age_months_band", "as_is"),
        ("episode.due_date", "as_is"),
        ("resident.name", "phone_masked"),
    ],
)
def test_transform_must_accept_the_source_kind(source, transform):
    text = HEAD + f'\n[fields.f]\nsource = "{source}"\ntransform = "{transform}"\n'
    (only,) = problems(text)
    assert f"transform {transform!r} cannot read {source!r}" in only


def test_address_parts_only_through_the_composite():
    text = HEAD + '\n[fields.room]\nsource = "address.room"\ntransform = "as_is"\n'
    assert any("part of the address" in p for p in problems(text))


def test_conditions_validated_with_lines():
    text = HEAD + (
        '\n[fields.phone]\nsource = "resident.phone"\ntransform = "phone_masked"\n'
        'when = { visit_booked_within_days = 400, services_any = ["massage"], moon = "full" }\n'
    )
    found = problems(text)
    line = line_of(text, "when =")
    assert len(found) == 3
    assert all(p.startswith(f"p.toml:{line}: phone:") for p in found)


def test_inline_field_tables_get_their_own_line():
    text = (
        HEAD + '\n[fields]\nok = { source = "case.reference", transform = "case_pseudonym" }\n'
        'bad = { source = "ledger.contraception", transform = "drop" }\n'
    )
    (only,) = problems(text)
    assert only.startswith(f"p.toml:{line_of(text, 'bad = ')}: bad:")


def test_toml_syntax_error_names_the_line():
    (only,) = problems(HEAD + "\n[fields.x]\nsource = \n")
    assert only.startswith("p.toml:14:")
    assert "TOML syntax error" in only


def test_load_error_for_missing_file(tmp_path):
    with pytest.raises(PolicyLoadError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


def test_identity_ignores_layout_and_comments_but_not_content():
    a = parse_policy(HEAD + GOOD_FIELD)
    b = parse_policy("# comment\n" + HEAD.replace("version = 1", "version    = 1") + GOOD_FIELD)
    c = parse_policy(HEAD + GOOD_FIELD + "sealed = true\n")
    assert a.identity == b.identity
    assert a.identity.sha256 != c.identity.sha256


def test_identity_is_domain_separated_sha256_of_rfc8785():
    import hashlib
    import tomllib

    doc = tomllib.loads(HEAD + GOOD_FIELD)
    expected = hashlib.sha256(HASH_DOMAIN + canonical_bytes(doc)).hexdigest()
    assert parse_policy(HEAD + GOOD_FIELD).identity.sha256 == expected
    assert canonical_bytes({"b": 1, "a": [True, "李"]}) == '{"a":[true,"李"],"b":1}'.encode()
    assert hashlib.sha256(canonical_bytes(doc)).hexdigest() != expected


def test_every_transform_is_documented_with_an_example_that_holds():
    import datetime as dt
    import doctest
    import re

    address = ("城阳区", "城阳街道", "民城路社区", "春阳花园", "3号楼", "2单元", "501")
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(verbose=False)
    for name, transform in TRANSFORMS.items():
        doc = transform.fn.__doc__ or ""
        if ">>>" in doc:  # the examples run, and must give what they show
            test = parser.get_doctest(doc, {name: transform.fn, "dt": dt}, name, None, 0)
            assert test.examples and runner.run(test).failed == 0, name
        else:  # an address generalisation names what it makes of a whole address
            (example,) = re.findall(r"\('([^']+)'\)", doc)
            assert transform.fn(address) == example, name
