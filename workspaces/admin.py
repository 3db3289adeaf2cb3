"""Workspaces in the Django admin: every write goes through workspaces.services, so members see it live."""

from django import forms
from django.contrib import admin

from . import services
from .models import Workspace, WorkspaceMember


class WorkspaceMemberInline(admin.TabularInline):
    model = WorkspaceMember
    extra = 0
    fields = ["user", "role", "position", "added_at"]
    readonly_fields = ["user", "role", "position", "added_at"]
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        # Sharing goes through services.share_workspace (the socket, REST) so members are told.
        return False


class WorkspaceAdminForm(forms.ModelForm):
    """Carries the version the editor loaded, so a change made meanwhile is a conflict, not overwritten."""

    based_on_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Workspace
        fields = ["name", "description", "settings", "owner"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["based_on_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            current = Workspace.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if cleaned.get("based_on_version") != current:
                raise forms.ValidationError(
                    f"Someone changed this workspace meanwhile (now version {current}). "
                    "Reload the page; your edit was not saved."
                )
        return cleaned


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = ["id", "name", "owner", "version", "updated_at"]
    list_filter = ["created_at", "updated_at"]
    search_fields = ["name", "description", "owner__username"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [WorkspaceMemberInline]

    def get_readonly_fields(self, request, obj=None):
        # The owner is chosen at creation; ownership transfer is not a field edit.
        return [*self.readonly_fields, "owner"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.create_workspace(
                owner=obj.owner, name=obj.name, description=obj.description, settings=obj.settings
            )
            obj.pk = created.pk
            return
        changes = {field: form.cleaned_data[field] for field in form.changed_data if field in services.EDITABLE_FIELDS}
        if changes:
            updated = services.update_workspace(
                actor=request.user,
                workspace_id=obj.pk,
                version=form.cleaned_data["based_on_version"],
                changes=changes,
                staff_override=True,
            )
            obj.version = updated.version

    def delete_model(self, request, obj):
        services.delete_workspace(actor=request.user, workspace_id=obj.pk, staff_override=True)

    def delete_queryset(self, request, queryset):
        for workspace_id in queryset.values_list("pk", flat=True):
            services.delete_workspace(actor=request.user, workspace_id=workspace_id, staff_override=True)


@admin.register(WorkspaceMember)
class WorkspaceMemberAdmin(admin.ModelAdmin):
    list_display = ["id", "workspace", "user", "role", "position"]
    list_filter = ["role"]
    search_fields = ["workspace__name", "user__username"]
    readonly_fields = ["workspace", "user", "role", "position", "added_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.unshare_workspace(
            actor=request.user, workspace_id=obj.workspace_id, user_id=obj.user_id, staff_override=True
        )
