"""Chat URLs (REST and pages arrive with issue 3)."""

urlpatterns: list = []
