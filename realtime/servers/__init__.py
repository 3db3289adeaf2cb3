"""
Everything that depends on one ASGI server's internals, behind one ``install()``.

``RealtimeConfig.ready()`` calls ``install()``; with ``REALTIME["SERVER_PATCHES"]`` False it does
nothing, and Switchboard runs on the servers' public behaviour alone (slower fan-out, Daphne's
close codes, no send or receive bound under Daphne). ``writer_for(send)`` gives the consumer a
direct frame writer for its connection when its server's path is installed, else None (ASGI).
"""

from realtime.conf import realtime_settings
from realtime.versions import Tested, untested

from . import daphne, uvicorn
from .frames import FrameWriter, PreparedFrame

__all__ = [
    "FrameWriter",
    "PreparedFrame",
    "accepting_paused",
    "install",
    "pause_accepting",
    "resume_accepting",
    "untested_versions",
    "writer_for",
]


def install() -> None:
    """Install each server's patches and write paths (idempotent); nothing when SERVER_PATCHES is False."""
    if realtime_settings.SERVER_PATCHES:
        daphne.install()
        uvicorn.install()


def writer_for(send) -> FrameWriter | None:
    """The direct ``FrameWriter`` for a connection whose ASGI ``send`` is ``send``, or None."""
    return daphne.writer_for(send) or uvicorn.writer_for(send)


def pause_accepting() -> None:
    """
    Stop accepting new connections while the process is at its handshake bound (idempotent),
    where the server can: Daphne with its patches, the kernel's listen backlog holding them.
    Elsewhere nothing happens, ``accepting_paused()`` stays False and the caller refuses what is
    over the bound. ``resume_accepting()`` undoes it.
    """
    daphne.pause_accepting()


def resume_accepting() -> None:
    """Accept new connections again after ``pause_accepting()`` (nothing if not paused)."""
    daphne.resume_accepting()


def accepting_paused() -> bool:
    """Whether ``pause_accepting()`` has this process's listening sockets paused now."""
    return daphne.accepting_paused()


def untested_versions() -> list[tuple[Tested, str]]:
    """Every installed server project outside the versions its patches were tested for."""
    return untested(daphne.TESTED + uvicorn.TESTED)
