"""Project-level pages."""

from django.views.generic import TemplateView


class HomeView(TemplateView):
    """``/``: what is running here and where to connect (templates/home.html)."""

    template_name = "home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scheme = "wss" if self.request.is_secure() else "ws"
        context["ws_url"] = f"{scheme}://{self.request.get_host()}/ws/"
        return context
