"""Project URLs: admin, JWT auth, and each app's REST API."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .views import FaviconView, HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    # Before admin/: its catch-all would answer /admin/announce/ with a 404.
    path("", include("rooms.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and ReDoc from our static files (SPECTACULAR_SETTINGS "SIDECAR"); ReDoc's template
    # without its Google Fonts link, so both pages load nothing from another origin.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"), name="api-redoc"
    ),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("", include("realtime.ops.urls")),
    path("", include("chat.urls")),
    path("", include("workspaces.urls")),
    path("", include("progress.urls")),
]
