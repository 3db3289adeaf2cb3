"""``manage.py seed_demo``: two demo users and a conversation between them, credentials printed."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from chat import services
from chat.models import Conversation
from realtime.users import display_name

DEMO_USERS = [("alice", "alice-demo-pass"), ("bob", "bob-demo-pass")]
DEMO_CONVERSATION = "Demo: alice and bob"
# The staff user has a full name: users see support replies as "Ann Lee (support)".
DEMO_STAFF_NAME = {"first_name": "Ann", "last_name": "Lee"}


class Command(BaseCommand):
    help = (
        "Create demo users alice and bob (with a staff superuser 'admin', named Ann Lee) and a group "
        "conversation; print credentials."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        users = []
        for username, password in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
            users.append(user)
        admin, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True, **DEMO_STAFF_NAME}
        )
        if created:
            admin.set_password("admin-demo-pass")
            admin.save()
        elif not admin.get_full_name().strip():  # seeded before the staff user had a name
            User.objects.filter(pk=admin.pk).update(**DEMO_STAFF_NAME)
        conversation = Conversation.objects.filter(kind=Conversation.Kind.GROUP, title=DEMO_CONVERSATION).first()
        if conversation is None:
            conversation = services.create_group(owner=users[0], title=DEMO_CONVERSATION, member_ids=[users[1].pk])
        self.stdout.write("Demo data ready:")
        for username, password in [*DEMO_USERS, ("admin", "admin-demo-pass")]:
            self.stdout.write(f"  user {username:<6} password {password}")
        self.stdout.write(f"  admin is staff, shown to users as {display_name(admin)!r}")
        self.stdout.write(f"  conversation {conversation.pk}: {conversation.title!r} (owner alice, bob)")
