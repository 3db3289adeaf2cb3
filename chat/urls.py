"""Chat REST API, the chat page and the support desk's data."""

from django.urls import path

from . import pages, views

urlpatterns = [
    path("chat/", pages.chat_page, name="chat"),
    path("api/chat/conversations/", views.ConversationListView.as_view(), name="chat-conversations"),
    path("api/chat/conversations/<int:pk>/", views.ConversationDetailView.as_view(), name="chat-conversation"),
    path("api/chat/conversations/<int:pk>/members/", views.MemberListView.as_view(), name="chat-members"),
    path(
        "api/chat/conversations/<int:pk>/members/<int:user_id>/", views.MemberDetailView.as_view(), name="chat-member"
    ),
    path("api/chat/conversations/<int:pk>/messages/", views.MessageListView.as_view(), name="chat-messages"),
    path("api/chat/conversations/<int:pk>/read", views.ReadView.as_view(), name="chat-read"),
    path("api/chat/messages/", views.DirectMessageView.as_view(), name="chat-send"),
    path("api/chat/support/", views.SupportView.as_view(), name="chat-support"),
    path("api/chat/support/queue/", views.SupportQueueView.as_view(), name="chat-support-queue"),
    path("api/chat/attachments/", views.AttachmentUploadView.as_view(), name="chat-attachments"),
    path("api/users/", views.PeopleSearchView.as_view(), name="people-search"),
    path("api/chat/attachments/<int:pk>", views.AttachmentDownloadView.as_view(), name="chat-attachment-download"),
]
