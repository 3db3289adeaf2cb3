from django.apps import AppConfig


class RealtimeTestAppConfig(AppConfig):
    name = "realtime.tests.testapp"
    label = "realtime_testapp"
    verbose_name = "realtime's test app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from realtime.signals import presence_changed

        from . import handlers  # registers the room.* frame handlers and the session groups

        presence_changed.connect(handlers.publish_presence, dispatch_uid="realtime_testapp.presence")
