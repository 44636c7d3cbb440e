"""Row ids are RFC 9562 version 7 UUIDs: time-ordered, random below the millisecond."""

from __future__ import annotations

import uuid

import pytest

from exchange.db.base import new_id
from exchange.db.ids import new_ids


def test_ids_are_version_7_uuids_in_canonical_text() -> None:
    ids = new_ids(500)
    assert len(set(ids)) == 500
    for rendered in ids:
        parsed = uuid.UUID(rendered)
        assert str(parsed) == rendered
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_the_first_48_bits_are_the_unix_millisecond() -> None:
    ms = 0x0123_4567_89AB
    for rendered in new_ids(20, now_ms=ms):
        assert uuid.UUID(rendered).int >> 80 == ms
    # RFC 9562 appendix A.6's timestamp, 2022-02-22 19:22:22 UTC (0x017F22E279B0)
    assert new_ids(1, now_ms=0x017F22E279B0)[0].startswith("017f22e2-79b0-7")


def test_ids_sort_by_time_as_text() -> None:
    earlier = new_ids(50, now_ms=1_700_000_000_000)
    later = new_ids(50, now_ms=1_700_000_000_001)
    assert max(earlier) < min(later)


def test_the_bits_below_the_millisecond_are_random() -> None:
    # 74 random bits: the same millisecond never repeats an id in practice, and every random
    # position takes both values across a batch (a constant bit would show here)
    ids = new_ids(2000, now_ms=1_700_000_000_000)
    assert len(set(ids)) == 2000
    randoms = [uuid.UUID(i).int for i in ids]
    fixed = (0xFFFF_FFFF_FFFF << 80) | (0xF << 76) | (0b11 << 62)
    varying = 0
    for value in randoms:
        varying |= value ^ randoms[0]
    assert varying == ((1 << 128) - 1) & ~fixed


def test_model_defaults_use_them() -> None:
    assert uuid.UUID(new_id()).version == 7


@pytest.mark.parametrize("ms", [-1, 1 << 48])
def test_a_timestamp_outside_48_bits_is_refused(ms: int) -> None:
    with pytest.raises(ValueError, match="48-bit"):
        new_ids(1, now_ms=ms)
