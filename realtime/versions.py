"""
The versions each server patch was written and tested for, and which installed ones fall outside.

Code that reads another project's private internals is only as good as the version it was read
from. Each such place declares ``TESTED``: a server's ``install()`` applies its patches only when
every project they touch is at a tested version, and the system checks ``realtime.E002`` (servers)
and ``realtime.E003`` (the channel layer) name the one that is not, with the fix.
"""

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["Tested", "describe_untested", "untested"]


@dataclass(frozen=True)
class Tested:
    """``distribution`` (its PyPI name) at versions within ``specifier`` (PEP 440, ">=4.2.3,<4.3")."""

    distribution: str
    specifier: str
    pinned: str  # the version requirements.txt pins, for the "pin it" hint


def untested(tested: tuple[Tested, ...]) -> list[tuple[Tested, str]]:
    """``(requirement, installed version)`` for each installed distribution outside its tested range.

    A distribution that is not installed is not listed: its server is not in use.
    """
    outside = []
    for requirement in tested:
        try:
            installed = version(requirement.distribution)
        except PackageNotFoundError:
            continue
        try:
            within = Version(installed) in SpecifierSet(requirement.specifier)
        except InvalidVersion:
            within = False
        if not within:
            outside.append((requirement, installed))
    return outside


def describe_untested(outside: list[tuple[Tested, str]]) -> str:
    """``untested``'s answer as one log phrase: "daphne 4.3.0 (tested >=4.2.3,<4.3), ..."."""
    return ", ".join(f"{req.distribution} {found} (tested {req.specifier})" for req, found in outside)
