"""Service keys in the admin (the key shown once, at creation), and a link to the announcement page."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from .models import ServiceKey

# The library's own key model is installed with it but unused: service keys are ServiceKey.
admin.site.unregister(APIKey)


@admin.register(ServiceKey)
class ServiceKeyAdmin(APIKeyModelAdmin):
    """
    The library's admin (creating a key shows it once in a message; revoking cannot be undone)
    with ``last_used``. The announcement page is linked from the list.
    """

    list_display = [*APIKeyModelAdmin.list_display, "last_used"]
    change_list_template = "admin/rooms/servicekey/change_list.html"
