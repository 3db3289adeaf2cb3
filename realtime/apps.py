from django.apps import AppConfig
from django.core import checks


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time core"

    def ready(self):
        # Imported here, not at module level: both need the app registry (models, admin).
        from . import checks as settings_checks  # noqa: F401  registers realtime.E001 and W001
        from . import servers
        from .delivery.checks import check_layer_version
        from .ops import admin  # noqa: F401  the user admin with presence and "Disconnect"
        from .servers.checks import check_server_versions

        checks.register(check_server_versions)
        checks.register(check_layer_version)
        # The server patches go in before any connection; daphne.server is imported by then (the
        # daphne command imports it first, and the daphne app does for runserver).
        servers.install()
