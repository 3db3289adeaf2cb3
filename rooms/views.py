"""The HTTP publish API for back-end services and the admin's announcement page: parse, call ``services``, reply."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.rest import body_with
from realtime.validation import validate

from . import services
from .auth import HasServiceKey, ServiceKeyAuthentication, ServiceKeyRateThrottle
from .serializers import AnnouncementIn, PublishIn

PublishedOut = inline_serializer(
    "PublishedOut",
    {
        "target": serializers.DictField(help_text='The one target the request named, e.g. {"room": "game:1"}.'),
        "type": serializers.ChoiceField(["room.message", "server.message"], help_text="The event sent."),
        "data": serializers.JSONField(help_text="The event's data, as the connections receive it."),
    },
)


class PublishView(APIView):
    """
    ``POST /api/rooms/publish/``: publish an event for a back-end service, to exactly one of a room
    (``room.message``), a user, a connection or everyone (``server.message``); 202 with what was
    sent (delivery is best-effort and not awaited). 400 for bad fields, 401 without a valid key,
    404 for a room no namespace matches or a connection that is not open, 429 over
    ``ROOMS_PUBLISH_RATE``.
    """

    authentication_classes = [ServiceKeyAuthentication]
    permission_classes = [HasServiceKey]
    throttle_classes = [ServiceKeyRateThrottle]

    @extend_schema(request=PublishIn, responses={202: PublishedOut}, tags=["rooms"])
    def post(self, request):
        args = validate(PublishIn, body_with(request))
        event, data = args["event"], args["data"]
        if "room" in args:
            target = {"room": args["room"]}
            published = services.publish_to_room(room=args["room"], event=event, data=data)
        elif "user_id" in args:
            target = {"user_id": args["user_id"]}
            published = services.send_to_user(user_id=args["user_id"], event=event, data=data)
        elif "connection_id" in args:
            target = {"connection_id": args["connection_id"]}
            published = services.send_to_connection(connection_id=args["connection_id"], event=event, data=data)
        else:
            target = {"everyone": True}
            published = services.send_to_everyone(event=event, data=data)
        event_type = "room.message" if "room" in target else "server.message"
        return Response({"target": target, "type": event_type, "data": published}, status=status.HTTP_202_ACCEPTED)


class AnnouncementForm(forms.Form):
    """The admin's announcement: one text, checked by ``AnnouncementIn`` like every other input."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), max_length=2000)


def announcement_view(request):
    """
    ``/admin/announce/`` (staff, through ``admin.site.admin_view``): a form whose text goes to
    every connection online as ``server.message {event: "announcement"}`` (``services.announce``).
    """
    form = AnnouncementForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        text = validate(AnnouncementIn, {"text": form.cleaned_data["text"]})["text"]
        services.announce(text=text, sender=request.user)
        messages.success(request, "Announcement sent to everyone online.")
        return redirect("rooms-announce")
    context = {**admin.site.each_context(request), "title": "Announcement to everyone online", "form": form}
    return TemplateResponse(request, "admin/rooms/announce.html", context)
