"""workspaces.services: the rules every entry point (socket, REST, admin) shares."""

import threading

import pytest
from django.db import close_old_connections, connection

from realtime.errors import Conflict, Forbidden, Invalid, NotFound
from workspaces import services
from workspaces.models import Workspace, WorkspaceMember
from workspaces.selectors import workspaces_for


def test_create_appends_to_the_owners_list(alice):
    first = services.create_workspace(owner=alice, name="One")
    second = services.create_workspace(owner=alice, name="Two")
    assert [w.pk for w in workspaces_for(alice)] == [first.pk, second.pk]
    assert WorkspaceMember.objects.get(workspace=first, user=alice).role == "owner"
    assert first.version == 1


def test_update_bumps_version_and_stale_version_conflicts_without_writing(alice, bob, shared_workspace):
    updated = services.update_workspace(actor=bob, workspace_id=shared_workspace.pk, version=1, changes={"name": "New"})
    assert (updated.name, updated.version) == ("New", 2)
    with pytest.raises(Conflict) as caught:
        services.update_workspace(actor=alice, workspace_id=shared_workspace.pk, version=1, changes={"name": "Lost"})
    assert caught.value.details["workspace"]["name"] == "New"
    assert caught.value.details["workspace"]["version"] == 2
    assert Workspace.objects.get(pk=shared_workspace.pk).name == "New"


def test_viewer_cannot_change_and_non_member_sees_not_found(carol, make_user, shared_workspace):
    with pytest.raises(Forbidden):
        services.update_workspace(actor=carol, workspace_id=shared_workspace.pk, version=1, changes={"name": "x"})
    stranger = make_user("dora")
    with pytest.raises(NotFound):
        services.update_workspace(actor=stranger, workspace_id=shared_workspace.pk, version=1, changes={"name": "x"})
    with pytest.raises(NotFound):
        services.update_workspace(actor=stranger, workspace_id=10**9, version=1, changes={"name": "x"})
    assert Workspace.objects.get(pk=shared_workspace.pk).version == 1


def test_only_the_owner_deletes_and_shares(bob, carol, shared_workspace):
    with pytest.raises(Forbidden):
        services.delete_workspace(actor=bob, workspace_id=shared_workspace.pk)
    with pytest.raises(Forbidden):
        services.share_workspace(actor=bob, workspace_id=shared_workspace.pk, user_id=carol.pk, role="editor")
    with pytest.raises(Forbidden):
        services.unshare_workspace(actor=bob, workspace_id=shared_workspace.pk, user_id=carol.pk)
    assert WorkspaceMember.objects.get(workspace=shared_workspace, user=carol).role == "viewer"


def test_share_rules(alice, bob, make_user, shared_workspace):
    with pytest.raises(Invalid):
        services.share_workspace(actor=alice, workspace_id=shared_workspace.pk, user_id=alice.pk, role="editor")
    with pytest.raises(Invalid):
        services.share_workspace(actor=alice, workspace_id=shared_workspace.pk, user_id=bob.pk, role="owner")
    inactive = make_user("gone", is_active=False)
    with pytest.raises(NotFound):
        services.share_workspace(actor=alice, workspace_id=shared_workspace.pk, user_id=inactive.pk, role="viewer")
    services.share_workspace(actor=alice, workspace_id=shared_workspace.pk, user_id=bob.pk, role="viewer")
    assert WorkspaceMember.objects.get(workspace=shared_workspace, user=bob).role == "viewer"


def test_members_can_leave_but_the_owner_cannot_be_removed(alice, carol, shared_workspace):
    services.unshare_workspace(actor=carol, workspace_id=shared_workspace.pk, user_id=carol.pk)
    assert not WorkspaceMember.objects.filter(workspace=shared_workspace, user=carol).exists()
    with pytest.raises(Invalid):
        services.unshare_workspace(actor=alice, workspace_id=shared_workspace.pk, user_id=alice.pk)


@pytest.mark.parametrize(
    "ids_of",
    [
        pytest.param(lambda own, foreign: own[:1], id="missing"),
        pytest.param(lambda own, foreign: own + [foreign], id="foreign"),
        pytest.param(lambda own, foreign: own + [own[0]], id="repeated"),
        pytest.param(lambda own, foreign: own + [10**9], id="unknown"),
    ],
)
def test_reorder_refuses_anything_but_exactly_the_users_ids(alice, bob, ids_of):
    own = [services.create_workspace(owner=alice, name=n).pk for n in ("a", "b")]
    foreign = services.create_workspace(owner=bob, name="bob's").pk
    with pytest.raises(Invalid) as caught:
        services.reorder_workspaces(user=alice, ids=ids_of(own, foreign))
    assert "ids" in caught.value.details
    assert [w.pk for w in workspaces_for(alice)] == own


def test_reorder_is_per_user(alice, bob, shared_workspace):
    mine = services.create_workspace(owner=bob, name="Bob's own")
    services.reorder_workspaces(user=bob, ids=[mine.pk, shared_workspace.pk])
    assert [w.pk for w in workspaces_for(bob)] == [mine.pk, shared_workspace.pk]
    assert [w.pk for w in workspaces_for(alice)] == [shared_workspace.pk]


@pytest.mark.django_db(transaction=True)
def test_racing_updates_on_one_version_have_exactly_one_winner(alice, bob):
    workspace = services.create_workspace(owner=alice, name="Race")
    services.share_workspace(actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="editor")
    barrier = threading.Barrier(8)
    outcomes = []

    def racer(actor, n):
        try:
            barrier.wait()
            services.update_workspace(
                actor=actor, workspace_id=workspace.pk, version=1, changes={"name": f"winner {n}"}
            )
            outcomes.append(("won", n))
        except Conflict:
            outcomes.append(("conflict", n))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=racer, args=((alice, bob)[n % 2], n)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [n for outcome, n in outcomes if outcome == "won"]
    assert len(outcomes) == 8 and len(winners) == 1
    stored = Workspace.objects.get(pk=workspace.pk)
    assert (stored.name, stored.version) == (f"winner {winners[0]}", 2)


def test_listing_costs_the_same_queries_for_one_or_many_workspaces(alice, django_assert_max_num_queries):
    from workspaces.events import workspaces_data

    for n in range(20):
        services.create_workspace(owner=alice, name=f"w{n}")
    with django_assert_max_num_queries(2):
        listed = workspaces_data(workspaces_for(alice))
    assert [w["name"] for w in listed] == [f"w{n}" for n in range(20)]
    owner = {"user_id": alice.pk, "username": "alice", "name": "alice", "is_staff": False, "role": "owner"}
    assert all(w["members"] == [owner] for w in listed)
