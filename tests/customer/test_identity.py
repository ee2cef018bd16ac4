"""Identity graph: linking, merging, rules, merge history and unmerge."""

from sqlalchemy import select

from omniretail.customer.models import Identifier, IdentityLink, Merge, Profile
from tests.customer.helpers import customer_of, identify, send, track


def _timeline_events(client, admin, cid):
    items = client.get(f"/api/v1/customers/{cid}/timeline", headers=admin).json()["items"]
    return sorted(i["event"] or i["type"] for i in items)


def test_anonymous_browsing_then_login_merges_into_the_known_customer(
    client, make_source, session, admin
):
    key, _ = make_source()
    send(client, key, identify("user-1", "device-old", plan="gold"))
    known = customer_of(session, "user_id", "user-1")
    send(client, key, track("Product Viewed", anonymousId="device-new"))
    anonymous = customer_of(session, "anonymous_id", "device-new")
    assert anonymous != known

    send(client, key, identify("user-1", "device-new"))

    assert customer_of(session, "anonymous_id", "device-new") == known
    merge = session.scalar(select(Merge))
    assert (merge.survivor_id, merge.absorbed_id, merge.cause) == (known, anonymous, "identify")
    assert _timeline_events(client, admin, known) == ["Product Viewed", "identify", "identify"]


def test_first_login_on_a_device_identifies_the_anonymous_profile_without_a_merge(
    client, make_source, session
):
    key, _ = make_source()
    send(client, key, track("Product Viewed", anonymousId="device-1"))
    anonymous = customer_of(session, "anonymous_id", "device-1")
    send(client, key, identify("user-1", "device-1"))
    assert customer_of(session, "user_id", "user-1") == anonymous
    assert session.scalars(select(Merge)).all() == []


def test_web_login_with_the_email_of_a_store_customer_is_the_same_person(
    client, make_source, session
):
    from tests.customer.helpers import create_customer

    store_customer = create_customer(session, email="ada@example.org", loyalty_card="LC 100")
    session.commit()
    key, _ = make_source("web")
    send(client, key, identify("web-ada", "browser-1", email="Ada@Example.org"))
    assert customer_of(session, "user_id", "web-ada") == store_customer
    assert customer_of(session, "anonymous_id", "browser-1") == store_customer


def test_one_email_with_two_user_ids_does_not_merge_them(client, make_source, session):
    web, _ = make_source("web")
    pos, _ = make_source("pos")
    send(client, pos, identify("loyal-77", None, email="ada@example.org"))
    send(client, web, identify("web-ada", None, email="ADA@example.org "))
    # two different user ids: the per-type limit (one user id per person) keeps them apart
    assert customer_of(session, "user_id", "loyal-77") != customer_of(session, "user_id", "web-ada")
    link = session.scalar(select(IdentityLink).where(IdentityLink.outcome.like("rejected%")))
    assert link.outcome == "rejected:limit:user_id"


def test_two_users_on_one_device_are_never_merged(client, make_source, session):
    key, _ = make_source()
    send(client, key, identify("alice", "family-tablet"))
    send(client, key, identify("bob", "family-tablet"))
    alice = customer_of(session, "user_id", "alice")
    bob = customer_of(session, "user_id", "bob")
    assert alice != bob
    assert session.scalars(select(Merge)).all() == []


def test_device_seen_with_many_users_is_marked_shared_and_ignored(client, make_source, session):
    key, _ = make_source("pos")
    for user in ("u-1", "u-2", "u-3"):
        send(client, key, identify(user, "till-device"))
    shared = session.scalar(select(Identifier.shared).where(Identifier.value == "till-device"))
    assert shared is True
    send(client, key, identify("u-4", "till-device"))
    send(client, key, track("Purchased", userId="u-4", anonymousId="till-device"))
    owners = {customer_of(session, "user_id", u) for u in ("u-1", "u-2", "u-3", "u-4")}
    assert len(owners) == 4
    outcome = session.scalars(
        select(IdentityLink.outcome).order_by(IdentityLink.id.desc()).limit(1)
    ).one()
    assert outcome == "ignored:shared"


def test_blocked_values_never_link_people(client, make_source, session):
    key, _ = make_source()
    send(client, key, identify("user-a", None, email="test@example.com"))
    send(client, key, identify("user-b", None, email="test@example.com"))
    assert customer_of(session, "user_id", "user-a") != customer_of(session, "user_id", "user-b")
    assert session.scalars(select(Identifier.type).where(Identifier.type == "email")).all() == []


def test_alias_merges_two_user_ids_despite_the_type_limit(client, make_source, session):
    key, _ = make_source()
    send(client, key, identify("old-id", None))
    send(client, key, identify("new-id", None))
    send(client, key, {"type": "alias", "userId": "new-id", "previousId": "old-id"})
    assert customer_of(session, "user_id", "old-id") == customer_of(session, "user_id", "new-id")
    assert session.scalar(select(Merge.cause)) == "alias"


def test_unmerge_restores_both_profiles_with_their_events(client, make_source, session, admin):
    key, _ = make_source()
    send(client, key, identify("user-1", "phone-app"), track("Opened App", userId="user-1"))
    send(client, key, track("Product Viewed", anonymousId="laptop"))
    send(client, key, identify("user-1", "laptop"))
    known = customer_of(session, "user_id", "user-1")
    merge_id = client.get(f"/api/v1/customers/{known}/merges", headers=admin).json()[0]["id"]

    response = client.post(
        f"/api/v1/customers/merges/{merge_id}/unmerge", json={"reason": "wrong"}, headers=admin
    )

    assert response.status_code == 200
    assert response.json()["undo_reason"] == "wrong"
    laptop = customer_of(session, "anonymous_id", "laptop")
    assert laptop != known
    assert _timeline_events(client, admin, laptop) == ["Product Viewed"]
    assert _timeline_events(client, admin, known) == ["Opened App", "identify", "identify"]
    status = session.scalar(select(Profile.status).where(Profile.id == laptop))
    assert status == "active"


def test_unmerged_pair_is_not_merged_again_automatically(client, make_source, session, admin):
    key, _ = make_source()
    send(client, key, identify("user-1", "phone"))
    send(client, key, track("X", anonymousId="laptop"))
    send(client, key, identify("user-1", "laptop"))
    merge_id = session.scalar(select(Merge.id))
    client.post(f"/api/v1/customers/merges/{merge_id}/unmerge", json={}, headers=admin)
    send(client, key, identify("user-1", "laptop"))
    assert customer_of(session, "anonymous_id", "laptop") != customer_of(
        session, "user_id", "user-1"
    )


def test_unmerge_twice_is_409_and_changes_nothing(client, make_source, session, admin):
    key, _ = make_source()
    send(client, key, identify("user-1", "phone"))
    send(client, key, track("X", anonymousId="laptop"))
    send(client, key, identify("user-1", "laptop"))
    merge_id = session.scalar(select(Merge.id))
    client.post(f"/api/v1/customers/merges/{merge_id}/unmerge", json={}, headers=admin)
    before = session.execute(select(Profile.id, Profile.root_id).order_by(Profile.id)).all()
    again = client.post(f"/api/v1/customers/merges/{merge_id}/unmerge", json={}, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "merge_already_undone"
    assert session.execute(select(Profile.id, Profile.root_id).order_by(Profile.id)).all() == before


def test_merge_history_explains_each_merge(client, make_source, session, admin):
    key, source_id = make_source()
    send(client, key, identify("user-1", "phone"))
    send(client, key, track("X", anonymousId="laptop"))
    send(client, key, identify("user-1", "laptop"))
    known = customer_of(session, "user_id", "user-1")
    history = client.get(f"/api/v1/customers/{known}/merges", headers=admin).json()
    assert len(history) == 1
    assert history[0]["evidence"]["identifiers"] == ["user_id", "anonymous_id"]
    assert history[0]["evidence"]["source"] == source_id
    assert history[0]["explanation"].startswith("identify: user_id and anonymous_id seen together")
    assert history[0]["undone_at"] is None


def test_manual_merge_by_support_agent(client, make_source, session, make_key):
    key, _ = make_source()
    send(client, key, track("X", anonymousId="a-1"), track("Y", anonymousId="a-2"))
    a = customer_of(session, "anonymous_id", "a-1")
    b = customer_of(session, "anonymous_id", "a-2")
    response = client.post(
        f"/api/v1/customers/{a}/merge",
        json={"other_id": b, "reason": "same person"},
        headers=make_key("support_agent"),
    )
    assert response.status_code == 200
    assert response.json()["cause"] == "manual"
    assert customer_of(session, "anonymous_id", "a-2") == customer_of(
        session, "anonymous_id", "a-1"
    )


def test_analyst_may_not_merge(client, make_source, session, make_key):
    key, _ = make_source()
    send(client, key, track("X", anonymousId="a-1"), track("Y", anonymousId="a-2"))
    a = customer_of(session, "anonymous_id", "a-1")
    b = customer_of(session, "anonymous_id", "a-2")
    response = client.post(
        f"/api/v1/customers/{a}/merge", json={"other_id": b}, headers=make_key("analyst")
    )
    assert response.status_code == 403
    assert session.scalars(select(Merge)).all() == []
