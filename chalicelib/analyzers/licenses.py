"""Declared licenses: the light normalisation every analyzer applies to what package metadata
says, and the few format-specific translations (Python trove classifiers, Java `Bundle-License`
URLs) that need a table.

`Package.licenses` keeps what the metadata declares, so the policy gate and the SBOMs see the
package author's own words: values are stripped, empty ones and the "I do not know" markers
(`UNKNOWN`, which setuptools writes when no license was given, `NOASSERTION`) dropped, repeats
removed (order kept), and an SPDX expression stays one string (`GPL-2.0-only AND LGPL-2.1-or-later`).
The only rewriting is a small table of unambiguous spellings of one SPDX license (`Apache 2.0`,
`GPLv2+`, Debian's `GPL-2+`, `Expat`, ...), matched on the whole value, case-insensitively: a
gate that blocks `GPL-3.0-or-later` then also blocks a package that wrote `GPLv3+`. Anything not in
the table (free text, `LGPL v3`, `BSD` without a clause count) is kept as written. Deciding whether
a value is a valid SPDX id or expression is the output formats' job (`formats/licensing.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from chalicelib.analyzers.base import FileResult
from chalicelib.models import Package

#: what a metadata field says when it says nothing
_NO_LICENSE = frozenset({"", "UNKNOWN", "NOASSERTION"})

#: lower-cased whole value -> SPDX id. Only spellings that name one SPDX license without doubt:
#: Fedora's legacy rpm names (GPLv2 = GPL v2 only, GPLv2+ = or later), Debian DEP-5 short names,
#: and the usual prose forms.
_ALIASES: dict[str, str] = {
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "asl 2.0": "Apache-2.0",
    "asl2.0": "Apache-2.0",
    "mit license": "MIT",
    "the mit license": "MIT",
    "expat": "MIT",
    "isc license": "ISC",
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv2.1": "LGPL-2.1-only",
    "lgplv2.1+": "LGPL-2.1-or-later",
    "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only",
    "agpl-3+": "AGPL-3.0-or-later",
    "mplv2.0": "MPL-2.0",
    "mpl 2.0": "MPL-2.0",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "zlib": "Zlib",
}

#: Python trove classifiers (`License :: ...`, the part after the last `::`) -> SPDX id. A
#: classifier without a version (`GNU General Public License (GPL)`) is not mapped. `BSD
#: License` and `Apache Software License` name no version or clause count; they map to what
#: projects using them almost always mean, as Trivy does.
_CLASSIFIERS: dict[str, str] = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "BSD License": "BSD-3-Clause",
    "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "zlib/libpng License": "Zlib",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}
_CLASSIFIER_PREFIX = "License ::"
#: classifiers that only say which family a license is in, not which license
_CLASSIFIER_GROUPS = frozenset({"OSI Approved", "DFSG approved"})

#: Java `Bundle-License` URLs (scheme and `www.` dropped, lower-cased, trailing `/` and
#: `.txt`/`.html`/`.php` removed) -> SPDX id
_LICENSE_URLS: dict[str, str] = {
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "opensource.org/licenses/mit": "MIT",
    "opensource.org/licenses/mit-license": "MIT",
    "opensource.org/licenses/apache-2.0": "Apache-2.0",
    "opensource.org/licenses/bsd-2-clause": "BSD-2-Clause",
    "opensource.org/licenses/bsd-3-clause": "BSD-3-Clause",
    "opensource.org/licenses/bsd-license": "BSD-3-Clause",
    "opensource.org/licenses/epl-2.0": "EPL-2.0",
    "opensource.org/licenses/mpl-2.0": "MPL-2.0",
    "eclipse.org/legal/epl-2.0": "EPL-2.0",
    "eclipse.org/legal/epl-v20": "EPL-2.0",
    "eclipse.org/legal/epl-v10": "EPL-1.0",
    "eclipse.org/org/documents/edl-v10": "BSD-3-Clause",
    "mozilla.org/mpl/2.0": "MPL-2.0",
}


def normalize_license(value: object) -> str | None:
    """One declared license value, lightly normalised (module docstring); None when it says
    nothing or is not a string."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.upper() in _NO_LICENSE:
        return None
    return _ALIASES.get(text.lower(), text)


def normalize_licenses(values: Iterable[object]) -> list[str]:
    """Each value normalised, the empty ones dropped, each license once, in the order given."""
    out: list[str] = []
    for value in values:
        text = normalize_license(value)
        if text is not None and text not in out:
            out.append(text)
    return out


def classifier_license(classifier: str) -> str | None:
    """`License :: OSI Approved :: MIT License` -> `MIT`. A classifier not in the table gives its
    last part as written (`Zope Public License`); one that only names a group (`License :: OSI
    Approved`) and non-license classifiers give None."""
    parts = [part.strip() for part in classifier.split("::")]
    if len(parts) < 2 or f"{parts[0]} ::" != _CLASSIFIER_PREFIX:
        return None
    name = parts[-1]
    if name in _CLASSIFIERS:
        return _CLASSIFIERS[name]
    if not name or name in _CLASSIFIER_GROUPS:
        return None
    return name


def url_license(url: str) -> str | None:
    """The SPDX id a well-known license URL stands for (`https://www.apache.org/licenses/
    LICENSE-2.0.txt` -> `Apache-2.0`, `https://spdx.org/licenses/MIT.html` -> `MIT`), else None."""
    text = url.strip().lower()
    for scheme in ("https://", "http://"):
        text = text.removeprefix(scheme)
    text = text.removeprefix("www.").rstrip("/")
    for suffix in (".txt", ".html", ".php"):
        text = text.removesuffix(suffix)
    if text.startswith("spdx.org/licenses/"):
        original = url.strip().rstrip("/")
        ident = original[original.lower().rfind("/licenses/") + len("/licenses/") :]
        for suffix in (".html", ".txt", ".json"):
            ident = ident.removesuffix(suffix)
        return ident or None
    return _LICENSE_URLS.get(text)


_OPERATORS = frozenset({"AND", "OR", "WITH"})
_EXPRESSION_TOKENS = re.compile(r"(\s+|\(|\))")


@lru_cache(maxsize=4096)  # an image repeats a few dozen licenses; a check costs ~80 us
def spdx_license_id(text: str) -> str | None:
    """`text` as an SPDX license list id with its canonical case (`mit` -> `MIT`), else None.
    The list is the one cyclonedx-python-lib ships (imported on first use: ~35 ms)."""
    from cyclonedx.spdx import fixup_id

    return fixup_id(text.strip()) if text.strip() else None


@lru_cache(maxsize=4096)
def spdx_expression(text: str) -> str | None:
    """`text` as a valid SPDX license expression in canonical form (ids in their list case,
    operators upper case: `mit or apache-2.0` -> `MIT OR Apache-2.0`), else None. A single id is
    an expression too."""
    from cyclonedx.spdx import fixup_id, is_expression

    if not text.strip() or not is_expression(text):
        return None
    tokens: list[str] = []
    for token in _EXPRESSION_TOKENS.split(text.strip()):
        if not token:
            continue
        if token.isspace():
            if tokens and tokens[-1] != " ":
                tokens.append(" ")
        elif token.upper() in _OPERATORS:
            tokens.append(token.upper())
        else:
            tokens.append(fixup_id(token) or token)
    canonical = "".join(tokens).replace("( ", "(").replace(" )", ")")
    return canonical if is_expression(canonical) else None


def apply_package_licenses(packages: list[Package], results: Iterable[FileResult]) -> list[Package]:
    """`packages` with `licenses` filled from the `package_licenses` of one analyzer's surviving
    results, by package name, for packages whose own metadata declared none. The first result
    naming a package wins (results come in (layer, path) order)."""
    by_name: dict[str, list[str]] = {}
    for result in results:
        for name, licenses in result.package_licenses.items():
            by_name.setdefault(name, licenses)
    if not by_name:
        return packages
    return [
        p.model_copy(update={"licenses": by_name[p.name]}) if not p.licenses and p.name in by_name else p
        for p in packages
    ]
