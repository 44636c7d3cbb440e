"""The office's masked shapes of a resident's personal values, one place for every door.

    name          贾**                 the surname (first character) kept, length hidden
    phone         178****6078          first 3 and last 4 digits kept
    national ID   370214********1234   first 6 (the region) and last 4 kept
    address       春阳花园3号楼         down to the building (楼栋): never the unit or the room

Pure functions of the plaintext; the console's list, its export and (once the API adopts it)
`GET /v1/residents` show exactly these shapes, so no door shows more than another. A value too
short to keep anything of is masked whole.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "*"


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + MASK * 2  # always two: the mask does not tell the name's length


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) < 8:
        return MASK * len(phone)
    return phone[:3] + MASK * (len(phone) - 7) + phone[-4:]


def mask_national_id(national_id: str | None) -> str | None:
    if not national_id:
        return national_id
    if len(national_id) <= 10:
        return MASK * len(national_id)
    return national_id[:6] + MASK * (len(national_id) - 10) + national_id[-4:]


def mask_address(compound: str | None, building: str | None) -> str:
    """The address down to the building; the unit and room are never part of it."""
    return "".join(part for part in (compound, building) if part)
