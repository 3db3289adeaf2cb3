"""Project-level pages."""

from django.templatetags.static import static
from django.views.generic import RedirectView, TemplateView


class HomeView(TemplateView):
    """``/``: what is running here and where to connect (templates/home.html)."""

    template_name = "home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scheme = "wss" if self.request.is_secure() else "ws"
        context["ws_url"] = f"{scheme}://{self.request.get_host()}/ws/"
        return context


class FaviconView(RedirectView):
    """
    ``/favicon.ico``: the icon in our static files. Browsers ask for it on pages that name none
    (the admin, JSON responses); templates/base.html names it with ``<link rel="icon">``.
    """

    permanent = False  # a static file renamed later (hashed names) must not stay cached as a 301

    def get_redirect_url(self, *args, **kwargs):
        return static("realtime/favicon.ico")
