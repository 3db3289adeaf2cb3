"""
Chat in the Django admin; a message written here is sent by the logged-in staff user through the
socket's checked path (services.send_as) like any other. The support desk (seed 002): support
conversations, who waits longest first, with unread counts and the user's online state; a
conversation page with the thread and a reply box, kept live over the socket
(static/chat/support_desk.js).
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html

from realtime.delivery import presence_of
from realtime.errors import NotFound, ProtocolError
from realtime.users import display_name
from realtime.validation import validate

from . import selectors, services
from .events import message_event
from .models import Conversation, Membership, Message, SupportConversation
from .serializers import MessageContentIn


class MembershipInline(admin.TabularInline):
    """A group's members; direct and support conversations' members are fixed (read-only here)."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "last_read_seq", "joined_at"]
    readonly_fields = ["last_read_seq", "joined_at"]

    def _is_group(self, obj) -> bool:
        return obj is None or obj.kind == Conversation.Kind.GROUP

    def has_add_permission(self, request, obj=None):
        return self._is_group(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._is_group(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._is_group(obj) and super().has_delete_permission(request, obj)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Conversations; member changes go through the services, so members hear about them live."""

    list_display = ["id", "kind", "title", "last_seq", "created_at"]
    list_filter = ["kind"]
    search_fields = ["title"]
    inlines = [MembershipInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        memberships = formset.save(commit=False)
        try:
            for membership in formset.deleted_objects:
                services.remove_member(actor=None, conversation=membership.conversation, user_id=membership.user_id)
            for membership in memberships:
                if membership.pk:
                    services.change_role(
                        actor=None,
                        conversation=membership.conversation,
                        user_id=membership.user_id,
                        role=membership.role,
                    )
                else:
                    services.add_member(
                        actor=None, conversation=membership.conversation, user=membership.user, role=membership.role
                    )
        except ProtocolError as exc:
            self.message_user(request, f"Members not changed: {exc.message}", messages.ERROR)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Read-only list: members are added and removed on their conversation's page (services)."""

    list_display = ["id", "user", "conversation", "role", "last_read_seq", "joined_at"]
    search_fields = ["user__username", "conversation__title"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _refusal_reason(exc: ProtocolError, conversation_id: int) -> str:
    """
    Why a send by the logged-in staff user was refused, for the admin's own pages. The API answers
    a conversation one may not see as not found (docs/protocol.md, "not_found or forbidden"); the
    admin lists every conversation, so here it says what is true: not a member.
    """
    if isinstance(exc, NotFound) and Conversation.objects.filter(pk=conversation_id).exists():
        return "You are not a member of this conversation"
    return exc.message


class MessageAdminForm(forms.ModelForm):
    """
    A message the logged-in staff user (``sender``, set by MessageAdmin.get_form) sends: the
    socket's content rules (text only: uploads are REST) and its access check, shown on the form.
    There is no sender field: nobody posts as someone else (issue 20).
    """

    sender = None  # the logged-in staff user

    class Meta:
        model = Message
        fields = ["conversation", "content", "client_msg_id"]

    def clean(self):
        cleaned = super().clean()
        serializer = MessageContentIn(data={"content": cleaned.get("content", "")})
        if not serializer.is_valid():
            for errors in serializer.errors.values():
                self.add_error("content", errors)
        conversation = cleaned.get("conversation")
        if conversation is not None:
            try:
                # The check chat.send makes (members; any staff member in a support conversation).
                selectors.access_conversation(self.sender, conversation.pk)
            except ProtocolError as exc:
                self.add_error("conversation", f"{_refusal_reason(exc, conversation.pk)}: you cannot post in it.")
            else:
                if conversation.closed_at is not None:
                    self.add_error("conversation", "This support conversation is closed.")
        return cleaned


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """
    Messages; one added here is sent as the logged-in staff user through services.send_as (the
    socket's authorised path: pushed live after commit, seq assigned). Stored messages are read-only.
    """

    form = MessageAdminForm
    list_display = ["id", "conversation", "seq", "sender", "content_type", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["content", "sender__username"]
    autocomplete_fields = ["conversation"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["conversation", "content", "client_msg_id"]
        return ["conversation", "sender", "seq", "content", "content_type", "attachment", "client_msg_id", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A stored message is history: members already received it, so it never changes here.
        return self.get_fields(request, obj) if obj else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"sender": request.user})

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            message, created = services.send_as(
                request.user,
                conversation_id=obj.conversation_id,
                content=obj.content,
                client_msg_id=obj.client_msg_id or None,
            )
        except ProtocolError as exc:
            # Refused after the form's check (closed or left meanwhile): response_add says so.
            obj.refusal = exc
            return
        for field in Message._meta.concrete_fields:
            setattr(obj, field.attname, getattr(message, field.attname))
        obj.sender = request.user
        obj._state.adding = False
        if not created:
            self.message_user(request, "That client_msg_id was already used: nothing new was stored.", messages.WARNING)

    def log_addition(self, request, obj, message):
        if obj.pk is None:  # refused: nothing was added
            return None
        return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:
            reason = _refusal_reason(obj.refusal, obj.conversation_id)
            self.message_user(request, f"Message not sent: {reason}.", messages.ERROR)
            return redirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)


def short_time(value) -> str:
    """
    A time as the desk's list shows it, in the current time zone: "14:05" today, "3 Dec 14:05"
    this year, "3 Dec 2025" before; the full date and time on hover (``title``) and in ``datetime``.
    """
    local, now = timezone.localtime(value), timezone.localtime()
    if local.date() == now.date():
        text = formats.time_format(local, "H:i")
    elif local.year == now.year:
        text = formats.date_format(local, "j M H:i")
    else:
        text = formats.date_format(local, "j M Y")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        formats.date_format(local, "DATETIME_FORMAT"),
        text,
    )


class OpenFilter(admin.SimpleListFilter):
    """Open (the default) or closed support conversations."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request, queryset):
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset.filter(closed_at__isnull=True)


@admin.register(SupportConversation)
class SupportDeskAdmin(admin.ModelAdmin):
    """
    The support desk. Any staff member may use it (seed 002: any staff member reads and replies);
    replies go through ``services.send_as`` (the socket's checked path) and reach the user's open connections live.
    """

    # Short times and a wrapping preview keep every column, "created at" too, inside the list.
    list_display = ["user", "waiting", "unread", "online", "last_message", "created"]
    list_display_links = ["user"]
    list_filter = [OpenFilter]
    search_fields = ["support_user__username", "support_user__first_name", "support_user__last_name"]
    ordering = [F("waiting_since").asc(nulls_last=True), "-last_seq", "pk"]
    list_per_page = 50

    class Media:
        js = ["realtime/client.js", "chat/support_desk.js"]
        css = {"all": ["chat/support_desk.css"]}

    def changelist_view(self, request, extra_context=None):
        """The desk's list, titled as staff know it (the model's plural counts rows: "2 support conversations")."""
        return super().changelist_view(request, {"title": "Support desk", **(extra_context or {})})

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=Conversation.Kind.SUPPORT).select_related("support_user")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False  # users open support conversations; the desk answers them

    def has_delete_permission(self, request, obj=None):
        return False  # the history stays

    @admin.display(description="user", ordering="support_user__username")
    def user(self, conversation) -> str:
        return format_html(
            '<span data-desk-conversation="{}">{}</span>', conversation.pk, display_name(conversation.support_user)
        )

    @admin.display(description="waiting since", ordering="waiting_since")
    def waiting(self, conversation):
        return short_time(conversation.waiting_since) if conversation.waiting_since else "-"

    @admin.display(description="created at", ordering="created_at")
    def created(self, conversation):
        return short_time(conversation.created_at)

    @admin.display(description="unread")
    def unread(self, conversation) -> str:
        return format_html(
            '<span class="desk-unread" data-conversation="{}">{}</span>',
            conversation.pk,
            conversation.last_seq - conversation.support_read_seq,
        )

    @admin.display(boolean=True, description="online")
    def online(self, conversation) -> bool:
        return presence_of([conversation.support_user_id])[conversation.support_user_id]["online"]

    @admin.display(description="last message")
    def last_message(self, conversation) -> str:
        message = conversation.messages.filter(seq=conversation.last_seq).first()
        return message.content[:80] if message else ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The conversation page: thread, reply box, close button; GET marks it read for the desk."""
        conversation = get_object_or_404(self.get_queryset(request), pk=object_id)
        if request.method == "POST":
            return self._act(request, conversation)
        page, has_more = selectors.messages_before(conversation, None, 100)
        if conversation.last_seq:
            services.mark_read(user=request.user, conversation=conversation, seq=conversation.last_seq)
        user = conversation.support_user
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Support: {display_name(user)}",
            "conversation": conversation,
            "support_user": user,
            "support_user_name": display_name(user),
            "online": presence_of([user.pk])[user.pk]["online"],
            "thread": [message_event(m) for m in page],  # each names its sender (staff: "(support)")
            "has_more": has_more,
            "last_seq": conversation.last_seq,
            # One key per rendered form: a double submit or a resent POST stores the reply once.
            "client_msg_id": f"desk-{uuid.uuid4().hex}",
            "media": self.media,
        }
        return TemplateResponse(request, "admin/chat/support_conversation.html", context)

    def _act(self, request, conversation):
        try:
            if "close" in request.POST:
                services.close_support(conversation=conversation)
                self.message_user(request, "Conversation closed.", messages.SUCCESS)
            else:
                # The socket's content rules (length, not blank, no NUL).
                args = validate(
                    MessageContentIn,
                    {
                        "content": request.POST.get("content", ""),
                        "client_msg_id": request.POST.get("client_msg_id") or None,
                    },
                )
                services.send_as(
                    request.user,
                    conversation_id=conversation.pk,
                    content=args["content"],
                    client_msg_id=args.get("client_msg_id"),
                )
        except ProtocolError as exc:
            details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (exc.details or {}).items())
            self.message_user(request, f"{exc.message}. {details}".strip(), messages.ERROR)
        return redirect(reverse("admin:chat_supportconversation_change", args=[conversation.pk]))
