"""Errors of the version comparators.

Both are `ValueError`s (the contract promises that) and `InputError`s (so the CLI and the API treat
a bad version string like any other bad input, with a stable `code`).
"""

from chalicelib.errors import InputError


class InvalidVersionError(InputError, ValueError):
    """A version string that the ecosystem's reference tool would reject."""

    code = "invalid_version"

    def __init__(self, ecosystem: str, version: str, reason: str) -> None:
        self.ecosystem = ecosystem
        self.version = version
        self.reason = reason
        super().__init__(f"invalid {ecosystem} version {version!r}: {reason}")


class UnknownEcosystemError(InputError, ValueError):
    """An ecosystem name that no comparator handles (names are OSV's, case-sensitive)."""

    code = "unknown_ecosystem"

    def __init__(self, ecosystem: str, known: tuple[str, ...] = ()) -> None:
        self.ecosystem = ecosystem
        hint = f"; known ecosystems: {', '.join(known)}" if known else ""
        super().__init__(f"unknown ecosystem {ecosystem!r}{hint}")
