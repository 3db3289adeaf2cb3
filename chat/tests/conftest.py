import pytest

from chat.models import Conversation, Membership


@pytest.fixture
def conversation(alice, bob):
    """A group conversation of alice and bob."""
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="alice and bob")
    Membership.objects.create(conversation=conversation, user=alice)
    Membership.objects.create(conversation=conversation, user=bob)
    return conversation


@pytest.fixture
def staff(make_user):
    """A support agent: staff, not a superuser."""
    return make_user("agent", is_staff=True)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def png_bytes(size=(2, 2)) -> bytes:
    """A real PNG image (Pillow)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()
