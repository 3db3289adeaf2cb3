import pytest

from workspaces import services


@pytest.fixture
def shared_workspace(alice, bob, carol):
    """alice owns it, bob edits, carol views."""
    workspace = services.create_workspace(owner=alice, name="Roadmap", description="Q1", settings={"color": "blue"})
    services.share_workspace(actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="editor")
    services.share_workspace(actor=alice, workspace_id=workspace.pk, user_id=carol.pk, role="viewer")
    return workspace
