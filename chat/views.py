"""
Chat REST API (DRF; JWT or session auth). Thin: validate, authorise through the selectors, call
the same services as the socket handlers, so a REST send is pushed live exactly like a socket
send. Errors use the envelope's codes (realtime/rest.py): 400 invalid, 404 not_found (also a
conversation the caller may not see: the two look alike), 403 forbidden (a member whose role does
not allow the action), 409 conflict (docs/protocol.md, "not_found or forbidden").
"""

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from realtime.errors import RateLimited
from realtime.paging import CursorIn, PageIn, page_schema
from realtime.rest import body_with
from realtime.validation import validate

from . import selectors, services
from .events import attachment_data, conversation_summary, message_event
from .serializers import (
    ASSIGNABLE_ROLES,
    AttachmentIn,
    ChangeRoleIn,
    CreateGroupIn,
    HistoryIn,
    MemberIn,
    MessageContentIn,
    PeopleSearchIn,
    ReadIn,
    SendMessageIn,
)


class ConversationListView(APIView):
    """
    ``/api/chat/conversations/``: a page of the caller's conversations (last message, unread;
    ``?limit=&cursor=``, as ``chat.conversations``); create a group.
    """

    @extend_schema(
        operation_id="chat_conversations_list",
        parameters=[PageIn],
        responses=page_schema(
            "ConversationPage", "conversations", serializers.ListField(child=serializers.DictField())
        ),
    )
    def get(self, request):
        args = validate(PageIn, request.query_params.dict(), text_input=True)
        page = selectors.conversation_page(request.user, limit=args["limit"], cursor=args.get("cursor"))
        return Response(page.reply("conversations"))

    @extend_schema(request=CreateGroupIn, responses={201: dict})
    def post(self, request):
        args = validate(CreateGroupIn, request.data)
        conversation = services.create_group(owner=request.user, **args)
        return Response(conversation_summary(conversation), status=status.HTTP_201_CREATED)


class ConversationDetailView(APIView):
    """``/api/chat/conversations/{id}/``: one conversation with its members (members; staff for support)."""

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        return Response(conversation_summary(selectors.access_conversation(request.user, pk)))


class MemberListView(APIView):
    """``POST /api/chat/conversations/{id}/members/ {user_id, role?}``: add a member (owner/admins)."""

    @extend_schema(request=MemberIn, responses={201: dict})
    def post(self, request, pk: int):
        args = validate(MemberIn, body_with(request, conversation_id=pk))
        conversation = selectors.access_conversation(request.user, pk)
        user = selectors.access_user(args["user_id"])
        services.add_member(actor=request.user, conversation=conversation, user=user, role=args["role"])
        return Response(conversation_summary(conversation), status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    """
    ``/api/chat/conversations/{id}/members/{user_id}/``: PATCH ``{role}`` makes the member an admin
    or a plain member (the owner only; ``chat.change_role``); DELETE removes a member
    (owner/admins), or leaves (oneself).
    """

    @extend_schema(
        # drf-spectacular documents every PATCH body as partial (each field optional); role is required.
        request={
            "application/json": {
                "type": "object",
                "properties": {"role": {"type": "string", "enum": [role.value for role in ASSIGNABLE_ROLES]}},
                "required": ["role"],
            }
        },
        responses=inline_serializer(
            "MemberRole",
            {
                "conversation_id": serializers.IntegerField(),
                "user_id": serializers.IntegerField(),
                "role": serializers.ChoiceField(choices=ASSIGNABLE_ROLES),
            },
        ),
    )
    def patch(self, request, pk: int, user_id: int):
        args = validate(ChangeRoleIn, body_with(request, conversation_id=pk, user_id=user_id))
        conversation = selectors.access_conversation(request.user, pk)
        membership = services.change_role(
            actor=request.user, conversation=conversation, user_id=user_id, role=args["role"]
        )
        return Response({"conversation_id": pk, "user_id": membership.user_id, "role": membership.role})

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int, user_id: int):
        conversation = selectors.access_conversation(request.user, pk)
        services.remove_member(actor=request.user, conversation=conversation, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageListView(APIView):
    """
    ``/api/chat/conversations/{id}/messages/``: GET a page of history, newest page first, in seq
    order (as ``chat.history``: ``before_seq`` or ``cursor``; the answer's ``next_cursor``, or
    ``next_before_seq``, fetches the older page, null at the start); POST sends a message to the
    conversation (``chat.send``'s content fields).
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("before_seq", int),
            OpenApiParameter("cursor", str, description="a next_cursor"),
            OpenApiParameter("limit", int, description="1-100, default 50"),
        ],
        responses={200: dict},
    )
    def get(self, request, pk: int):
        query = {**request.query_params.dict(), "conversation_id": pk}
        args = validate(HistoryIn, query, text_input=True)
        cursor = validate(CursorIn, query, text_input=True).get("cursor")
        conversation = selectors.access_conversation(request.user, pk)
        page = selectors.history_page(
            conversation, limit=args["limit"], before_seq=args.get("before_seq"), cursor=cursor
        )
        return Response({**page, "next_before_seq": page["messages"][0]["seq"] if page["has_more"] else None})

    @extend_schema(request=MessageContentIn, responses={201: dict, 200: dict})
    def post(self, request, pk: int):
        args = validate(SendMessageIn, body_with(request, conversation_id=pk))
        return _sent(*services.send_as(request.user, **args))


class DirectMessageView(APIView):
    """``POST /api/chat/messages/``: send with ``chat.send``'s data (``recipient_id`` starts a direct conversation)."""

    @extend_schema(request=SendMessageIn, responses={201: dict, 200: dict})
    def post(self, request):
        return _sent(*services.send_as(request.user, **validate(SendMessageIn, request.data)))


def _sent(message, created: bool) -> Response:
    # 201 for a new message; 200 with duplicate true when the client_msg_id was already used.
    return Response(
        {"message": message_event(message), "duplicate": not created},
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


class ReadView(APIView):
    """``POST /api/chat/conversations/{id}/read {seq}``: mark read up to ``seq`` (``chat.read``)."""

    @extend_schema(request=ReadIn, responses={200: dict})
    def post(self, request, pk: int):
        args = validate(ReadIn, body_with(request, conversation_id=pk))
        conversation = selectors.access_conversation(request.user, pk)
        read_seq, unread = services.mark_read(user=request.user, conversation=conversation, seq=args["seq"])
        return Response({"conversation_id": pk, "last_read_seq": read_seq, "unread": unread})


class SupportView(APIView):
    """``POST /api/chat/support/``: open (or return) the caller's support conversation."""

    @extend_schema(request=None, responses={201: dict, 200: dict})
    def post(self, request):
        conversation, created = services.open_support(user=request.user)
        return Response(
            conversation_summary(conversation), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class SupportQueueView(APIView):
    """``GET /api/chat/support/queue/`` (staff): open support conversations, who waits longest first."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(selectors.support_queue())


class AttachmentUploadView(APIView):
    """
    ``POST /api/chat/attachments/`` (multipart ``file``, ``kind`` image|file): store an upload the
    caller then sends with ``chat.send {content_type, attachment_id}``. Limits: settings
    ``CHAT_MAX_UPLOAD_BYTES``, ``CHAT_IMAGE_TYPES``, ``CHAT_FILE_TYPES``.
    """

    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": AttachmentIn}, responses={201: dict})
    def post(self, request):
        args = validate(AttachmentIn, request.data)
        attachment = services.upload_attachment(uploader=request.user, file=args["file"], mime_type=args["mime_type"])
        return Response(attachment_data(attachment), status=status.HTTP_201_CREATED)


class AttachmentDownloadView(APIView):
    """``GET /api/chat/attachments/{id}``: the file, for its uploader and whoever may read its conversation."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int):
        attachment = selectors.access_attachment(request.user, pk)
        # Images inline, anything else as a download; nosniff (settings) stops type guessing.
        return FileResponse(
            attachment.file.open("rb"),
            filename=attachment.name,
            content_type=attachment.mime_type,
            as_attachment=not attachment.mime_type.startswith("image/"),
        )


class PeopleSearchThrottle(UserRateThrottle):
    """
    People searches per user at ``settings.CHAT_PEOPLE_SEARCH_RATE`` (DRF's rate syntax,
    ``"60/min"``): a search box asks as a person types, a scraper of the user list is slowed.
    Counted in Django's default cache: per process unless ``CACHES`` is shared.
    """

    scope = "people_search"

    def get_rate(self):
        return settings.CHAT_PEOPLE_SEARCH_RATE


class PeopleSearchView(APIView):
    """
    ``GET /api/users/?search=<at least 2 characters>``: up to 20 people the caller may message or
    add to a group, for pickers that choose people by name (selectors.search_people has the
    visibility rule); ``{"users": [{"id", "username", "name", "is_staff"}]}``. 400 ``invalid`` for
    a search shorter than 2 characters, 429 ``rate_limited`` (``details.retry_after_ms``) past
    ``CHAT_PEOPLE_SEARCH_RATE``.
    """

    throttle_classes = [PeopleSearchThrottle]

    @extend_schema(
        operation_id="users_search",
        parameters=[PeopleSearchIn],
        responses=inline_serializer(
            "PeopleSearchResult",
            {
                "users": serializers.ListField(
                    child=inline_serializer(
                        "Person",
                        {
                            "id": serializers.IntegerField(),
                            "username": serializers.CharField(),
                            "name": serializers.CharField(),
                            "is_staff": serializers.BooleanField(),
                        },
                    )
                )
            },
        ),
    )
    def get(self, request):
        args = validate(PeopleSearchIn, request.query_params.dict(), text_input=True)
        return Response({"users": selectors.search_people(request.user, args["search"])})

    def throttled(self, request, wait):
        # The envelope's rate_limited with retry_after_ms, as every other refusal (realtime/rest.py).
        raise RateLimited("Too many searches: wait a moment", details={"retry_after_ms": int((wait or 1) * 1000)})
