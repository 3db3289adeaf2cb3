"""Chat in the Django admin; a message written here goes through services.send_message like any other."""

from django.contrib import admin

from . import services
from .models import Conversation, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "title", "last_seq", "created_at"]
    list_filter = ["kind"]
    search_fields = ["title"]
    inlines = [MembershipInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership.delete()
        for membership in memberships:
            if membership.pk:
                membership.save()
            else:
                services.add_member(conversation=membership.conversation, user=membership.user)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "conversation", "joined_at"]
    search_fields = ["user__username", "conversation__title"]
    autocomplete_fields = ["user", "conversation"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.pk = services.add_member(conversation=obj.conversation, user=obj.user).pk


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "seq", "sender", "content_type", "created_at"]
    list_filter = ["content_type"]
    search_fields = ["content", "sender__username"]
    autocomplete_fields = ["conversation", "sender"]
    fields = ["conversation", "sender", "content", "content_type", "client_msg_id"]

    def get_readonly_fields(self, request, obj=None):
        # A stored message is history: members already received it, so it never changes here.
        return self.fields if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        message, _ = services.send_message(
            sender=obj.sender, conversation=obj.conversation, content=obj.content,
            content_type=obj.content_type, client_msg_id=obj.client_msg_id,
        )
        obj.pk = message.pk
