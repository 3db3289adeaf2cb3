"""Chat conversations, their members and their messages."""

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    """A direct (two users, one per pair) or group conversation; ``last_seq`` is its newest message's seq."""

    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # "<smaller user id>:<larger user id>" for direct conversations: the database keeps one per pair.
    direct_key = models.CharField(max_length=50, null=True, blank=True, unique=True, editable=False)
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title or f"{self.get_kind_display()} conversation {self.pk}"


class Membership(models.Model):
    """A user's membership of a conversation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)
    # The highest seq this member has read (chat.read; sending reads up to one's own message).
    # Never moves backwards; unread = conversation.last_seq - last_read_seq (seq is gap-free).
    last_read_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="chat_membership_unique")]

    def __str__(self):
        return f"{self.user} in {self.conversation}"


class Message(models.Model):
    """
    One stored message. ``seq`` is strictly increasing per conversation (1, 2, 3, ...);
    ``client_msg_id`` is the sender's idempotency key, unique per sender.
    """

    class ContentType(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        FILE = "file"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    content = models.TextField()
    content_type = models.CharField(max_length=10, choices=ContentType.choices, default=ContentType.TEXT)
    seq = models.PositiveBigIntegerField(editable=False)
    client_msg_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_seq_unique"),
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"],
                condition=models.Q(client_msg_id__isnull=False),
                name="chat_message_idempotency_key_unique",
            ),
        ]

    def __str__(self):
        return f"#{self.seq} in {self.conversation_id} by {self.sender_id}"
