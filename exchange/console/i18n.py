"""The console's languages: Babel catalogues compiled at install (zh_CN default, en).

Message ids are English; the zh_CN catalogue translates every one (a test checks that), the en
catalogue is the identity. A missing compiled catalogue is a broken install and refuses to
start the console with one line naming the fix.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from exchange.settings import ConfigurationError

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"
DEFAULT: Final = "zh_CN"
LANGUAGE_COOKIE: Final = "exchange-lang"


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # catalogue name
    tag: str  # BCP 47, for <html lang>
    label: str  # its own name, shown in the switch


LANGUAGES: Final = {
    "zh_CN": Language("zh_CN", "zh-CN", "中文"),
    "en": Language("en", "en", "English"),
}


def N_(message: str) -> str:  # noqa: N802  (the conventional gettext marker name)
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(code: str) -> gettext.GNUTranslations:
    try:
        with (LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as fh:
            return gettext.GNUTranslations(fh)
    except OSError:
        raise ConfigurationError(
            f"console catalogue {code} is not compiled; run `make install` "
            f"(pybabel compile -d {LOCALE_DIR} -D {DOMAIN})"
        ) from None


def check_catalogues() -> None:
    """Load every catalogue once, at start-up (fails with ConfigurationError)."""
    for code in LANGUAGES:
        translations(code)


def choose(cookie: str | None) -> Language:
    return LANGUAGES.get(cookie or "", LANGUAGES[DEFAULT])
