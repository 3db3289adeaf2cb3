"""System check ``realtime.E002``: a server project at a version its patches were not tested for."""

from django.core.checks import Error

from realtime.conf import realtime_settings

from . import untested_versions


def check_server_versions(app_configs, **kwargs):
    """
    realtime.E002: with ``REALTIME["SERVER_PATCHES"]`` on, every installed server project must be
    at a version in its ``TESTED`` range (realtime/servers/daphne, realtime/servers/uvicorn.py):
    outside it the patches are not applied, and the server runs without the bounds they add.
    """
    if not realtime_settings.SERVER_PATCHES:
        return []
    return [
        Error(
            f"{requirement.distribution} {found} is outside the versions Switchboard's server patches were "
            f"tested with ({requirement.specifier}); they are not applied.",
            hint=f"Pin {requirement.distribution}=={requirement.pinned}, or set REALTIME['SERVER_PATCHES'] = False "
            "to run on the server's public behaviour alone (docs/architecture.md).",
            id="realtime.E002",
        )
        for requirement, found in untested_versions()
    ]
