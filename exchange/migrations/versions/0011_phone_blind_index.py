"""A keyed blind index of the phone, for the exact phone lookup without decrypting the scope.

`residents.phone_index` is the blind index of the normalised mobile number in its own hash
domain (a key derived for the phone, never comparable with `national_id_index`), under the
same key version as the row's ID-number index (`national_id_index_version`). Not unique: a
family may share a phone. Erased rows must hold none (`erased_holds_nothing` now names it).

The migration holds no keys, so rows that already exist keep `phone_index` NULL until
`exchange keys reindex-phones` (resumable, batch by batch) or a blind-index rotation indexes
them; meanwhile the lookup still decrypts the rows in scope that have no index, and only those.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEALED = ("name", "national_id", "phone", "birth_date", "address_compound", "address_building",
           "address_unit", "address_room", "national_id_index")  # fmt: skip


def _erased_holds_nothing(columns: Sequence[str]) -> str:
    return "erased_at IS NULL OR (" + " AND ".join(f"{c} IS NULL" for c in columns) + ")"


def upgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.add_column(sa.Column("phone_index", sa.String(length=128), nullable=True))
        batch.drop_constraint(op.f("ck_residents_erased_holds_nothing"), type_="check")
        batch.create_check_constraint(op.f("ck_residents_erased_holds_nothing"),
                                      _erased_holds_nothing((*_SEALED, "phone_index")))
        batch.create_index(batch.f("ix_residents_phone_index"), ["phone_index"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.drop_index(batch.f("ix_residents_phone_index"))
        batch.drop_constraint(op.f("ck_residents_erased_holds_nothing"), type_="check")
        batch.create_check_constraint(op.f("ck_residents_erased_holds_nothing"),
                                      _erased_holds_nothing(_SEALED))
        batch.drop_column("phone_index")
