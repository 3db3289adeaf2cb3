"""Chat conversations, their members and their messages."""

from django.conf import settings
from django.db import models

from realtime.users import display_name


class Conversation(models.Model):
    """
    A conversation; ``last_seq`` is its newest message's seq.

    Kinds (issue 3, seeds 002 and 004): ``direct`` (two users, one per pair), ``group`` (an owner
    and members), ``support`` (a user and the support staff: one open per user; any staff member
    may read, join and reply).
    """

    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"
        SUPPORT = "support"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # "<smaller user id>:<larger user id>" for direct conversations: the database keeps one per pair.
    direct_key = models.CharField(max_length=50, null=True, blank=True, unique=True, editable=False)
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Support conversations: the user being helped, when it was closed, the seq the support desk
    # has read up to (shared by all staff), and since when the user waits for an answer (the
    # first user message after the last staff reply; None when nobody waits).
    support_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="support_conversations"
    )
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    support_read_seq = models.PositiveBigIntegerField(default=0, editable=False)
    waiting_since = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["support_user"],
                condition=models.Q(kind="support", closed_at__isnull=True),
                name="chat_one_open_support_conversation_per_user",
            ),
        ]

    def __str__(self):
        if self.kind == self.Kind.SUPPORT and self.support_user_id:
            return self.title or f"Support for user {self.support_user_id}"
        return self.title or f"{self.get_kind_display()} conversation {self.pk}"


class Membership(models.Model):
    """A user's membership of a conversation; in a group the owner and admins manage members."""

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    # The highest seq this member has read (chat.read; sending reads up to one's own message).
    # Never moves backwards; unread = conversation.last_seq - last_read_seq (seq is gap-free).
    last_read_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="chat_membership_unique")]

    def __str__(self):
        return f"{self.user} in {self.conversation}"


def attachment_path(attachment, filename: str) -> str:
    """Uploads go under ``chat/<uploader id>/``; the storage API makes each name unique."""
    return f"chat/{attachment.uploader_id}/{filename}"


class Attachment(models.Model):
    """
    An uploaded image or file (REST ``POST /api/chat/attachments/``), stored through Django's
    storage API and referenced by at most one message. Readable by its uploader and by those who
    can read the conversation of the message that references it.
    """

    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_attachments")
    file = models.FileField(upload_to=attachment_path)
    name = models.CharField(max_length=255)  # the name as uploaded, shown to readers
    mime_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()  # bytes
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


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
    # image and file messages reference their upload; content is then the caption (or the file name).
    attachment = models.OneToOneField(
        Attachment, null=True, blank=True, on_delete=models.PROTECT, related_name="message"
    )
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
        # The admin's confirmations and history name a message by this: seq is assigned when the
        # message is sent (services), so an unsent one says so instead of "#None".
        if self.seq is None:
            return "New message (not sent yet)"
        return f"Message {self.seq} in {self.conversation} by {display_name(self.sender)}"


class SupportConversation(Conversation):
    """The support desk's view of support conversations in the admin (chat/admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "support conversation"
        # The list counts its rows with it ("2 support conversations"); its title is "Support desk" (admin.py).
        verbose_name_plural = "support conversations"
