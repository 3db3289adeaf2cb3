"""System check ``rooms.E001``: python-engineio at a version seed 003's upgrade patch was not read from."""

from django.core.checks import Error, register

from realtime.conf import realtime_settings
from realtime.versions import untested

from .compat.engineio_upgrade import TESTED


@register()
def check_engineio_version(app_configs, **kwargs):
    """
    rooms.E001: with ``REALTIME["SERVER_PATCHES"]`` on, python-engineio must be at a version in
    ``rooms.compat.engineio_upgrade.TESTED``; outside it, seed 003's sockets that upgraded from
    long-polling keep engine.io's per-socket queue (3.6x native's CPU per delivery).
    """
    if not realtime_settings.SERVER_PATCHES:
        return []
    return [
        Error(
            f"{requirement.distribution} {found} is outside the versions seed 003's upgrade patch was tested with "
            f"({requirement.specifier}); upgraded Socket.IO sockets keep engine.io's queue.",
            hint=f"Pin {requirement.distribution}=={requirement.pinned} (rooms/compat/engineio_upgrade.py), or set "
            "REALTIME['SERVER_PATCHES'] = False.",
            id="rooms.E001",
        )
        for requirement, found in untested(TESTED)
    ]
