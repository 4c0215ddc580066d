"""The bot's Graph client against the lab's Entra + Graph stand-in over HTTPS, with real writeback into the
lab AD: reads, resetPassword with its long-running operation, Temporary Access Passes, throttling, outages,
and the password never showing anywhere."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import httpx
import pytest
from pydantic import SecretStr

from bot.clients.entra_auth import DelegatedTokens
from bot.clients.graph import GraphClient, GraphUser, RoleGroups, odata_string, parse_graph_time
from bot.clients.graph.wire import _graph_error, _retry_after
from bot.domain.reset_polling import POLL_CAP_S, POLL_FAST_S, POLL_FAST_WINDOW_S
from bot.errors import (
    GraphError,
    GraphPermissionError,
    GraphRejectedError,
    GraphThrottledError,
    GraphUnavailableError,
)
from lab.people import person

if TYPE_CHECKING:  # imported by pytest_plugins below, so that pytest rewrites its asserts
    from tests.clients.graphlab import EntraControl

pytest_plugins = ("tests.clients.graphlab",)


pytestmark = pytest.mark.usefixtures("clean_entra")


@pytest.fixture
def restore_alice(entra_control: EntraControl) -> Iterator[None]:
    """alice's fixture password back in AD afterwards (other tests sign in with it), history forgotten."""
    yield
    entra_control.restore(person("alice"))


def _times(entries: list[dict[str, object]]) -> list[datetime]:
    return [datetime.fromisoformat(str(e["time"])) for e in entries]


# --- reads ------------------------------------------------------------------------------------------------------
def test_a_synced_user_comes_with_the_on_prem_facts(graph: GraphClient) -> None:
    alice = person("alice")
    user = graph.get_user(alice.upn)
    assert user is not None
    assert (user.id, user.user_principal_name, user.mail, user.display_name) == \
        (alice.entra_id, alice.upn, alice.mail, "Alice Archer")
    assert user.account_enabled is True
    assert user.synced and user.on_premises_sync_enabled is True
    assert user.on_premises_sam_account_name == "alice"
    assert user.on_premises_distinguished_name == alice.dn
    assert user.on_premises_domain_name == "corp.example.test"
    assert user.on_premises_user_principal_name == alice.upn
    assert user.on_premises_last_sync is not None and user.on_premises_last_sync.tzinfo is not None
    assert user.last_password_change is not None
    assert datetime.now(UTC) - user.on_premises_last_sync < timedelta(hours=1)
    assert graph.get_user(alice.entra_id) == user, "by object id as by UPN"


def test_a_cloud_only_user_has_no_on_prem_facts_and_nobody_is_none(graph: GraphClient) -> None:
    cora = graph.get_user(person("cora").upn)
    assert cora is not None
    assert not cora.synced and cora.on_premises_sync_enabled is None
    assert cora.on_premises_sam_account_name is None and cora.on_premises_distinguished_name is None
    assert cora.on_premises_last_sync is None
    dave = graph.get_user("dave@corp.example.test")
    assert dave is not None and dave.account_enabled is False
    assert graph.get_user("nobody@corp.example.test") is None
    assert graph.get_user("") is None
    assert graph.get_user("..") is None
    assert graph.get_user("a/b?c#d") is None, "a hostile id stays one path segment"


def test_find_users_by_mail_or_upn_and_nobody(graph: GraphClient) -> None:
    alice = person("alice")
    assert [u.id for u in graph.find_users(alice.mail)] == [alice.entra_id]
    assert [u.id for u in graph.find_users(alice.upn.upper())] == [alice.entra_id], "case-insensitive, as Graph"
    found = graph.find_users(person("cora").mail)
    assert [u.user_principal_name for u in found] == [person("cora").upn]
    assert graph.find_users("nobody@corp.example.test") == []
    assert graph.find_users("   ") == []


@pytest.mark.parametrize("hostile", [
    "o'brien@corp.example.test",
    "alice@corp.example.test' or startswith(displayName,'",
    "x' or mail eq 'alice@corp.example.test",
    "'",
    "''",
])
def test_find_users_quotes_odata_literals(graph: GraphClient, hostile: str) -> None:
    assert graph.find_users(hostile) == [], "a quote must stay inside the literal, never end it"


def test_odata_literals_double_quotes() -> None:
    assert odata_string("o'brien") == "'o''brien'"
    assert odata_string("''") == "''''''"


def test_search_users_by_the_start_of_a_name(graph: GraphClient) -> None:
    assert [u.user_principal_name for u in graph.search_users("Ali")] == [person("alice").upn]
    assert {u.user_principal_name for u in graph.search_users("h")} >= {person("hank").upn, person("hedy").upn}
    assert [u.user_principal_name for u in graph.search_users("Archer")] == [person("alice").upn], "surname"
    assert [u.user_principal_name for u in graph.search_users("Alice Arch")] == [person("alice").upn]
    assert len(graph.search_users("h", limit=1)) == 1
    assert graph.search_users("o'") == []
    assert graph.search_users("") == []


def test_search_users_follows_next_links_up_to_the_limit(entra_control: EntraControl) -> None:
    with entra_control.graph() as graph:
        pages_before = len(entra_control.requests("graph"))
        # A small $top forces @odata.nextLink paging; the client follows it and stops at the limit.
        found = graph._collect("/users", {"$filter": "startswith(givenName,'h')", "$top": "1"},
                               what="page", crid="x", limit=2)
        assert {u["userPrincipalName"] for u in found} == {person("hank").upn, person("hedy").upn}
        assert len(entra_control.requests("graph")) - pages_before == 2
        everyone = graph._collect("/users", {"$filter": "startswith(givenName,'h')", "$top": "1"},
                                  what="page", crid="x")
        assert len(everyone) == 2, "without a limit, until there is no nextLink"


def test_manager_of(graph: GraphClient) -> None:
    manager = graph.manager_of(person("alice").entra_id)
    assert manager is not None
    assert manager.user_principal_name == person("mona").upn
    assert manager.on_premises_sam_account_name == "mona"
    assert graph.manager_of(person("olga").entra_id) is None


def test_directory_roles(graph: GraphClient) -> None:
    assert "Global Administrator" in graph.directory_roles_of(person("paula").entra_id)
    assert graph.directory_roles_of(person("hank").entra_id) == ["Helpdesk Administrator"]
    assert graph.directory_roles_of(person("alice").entra_id) == [], "groups are not roles"


def test_role_assignments_and_eligibilities_show_what_directory_roles_miss(graph: GraphClient,
                                                                             entra_control: EntraControl) -> None:
    """Custom and administrative-unit-scoped roles are no directoryRole memberships, and a PIM-eligible role is not
    held until activated: only roleManagement shows them."""
    bob = person("bob").entra_id
    entra_control.assign("bob", "Contoso Password Reviewer", custom=True)
    entra_control.assign("bob", "Helpdesk Administrator", administrative_unit="Sales")
    entra_control.assign("bob", "Global Administrator", eligible=True)
    assert graph.directory_roles_of(bob) == []
    assert sorted(graph.role_assignments_of(bob)) == ["Contoso Password Reviewer", "Helpdesk Administrator"]
    assert graph.eligible_roles_of(bob) == ["Global Administrator"]
    assert graph.role_assignments_of(person("paula").entra_id) == ["Global Administrator"]
    assert graph.eligible_roles_of(person("alice").entra_id) == []


def test_roles_held_through_role_assignable_groups_are_read_under_the_group(
        graph: GraphClient, entra_control: EntraControl) -> None:
    """A role given to a role-assignable group names the group as principalId: the user's own reads miss it. The
    groups a person is in, may join or own through PIM for Groups, or owns, are found; the roles are read for them
    in one ``principalId in (...)`` query."""
    entra_control.role_group("Tier0", members=("bob",), owners=("olga",), eligible_members=("alice",),
                             eligible_owners=("bob",))
    entra_control.role_group("Tier1", members=("bob",))
    entra_control.assign_group("Tier0", "Global Administrator")
    entra_control.assign_group("Tier1", "Privileged Role Administrator", eligible=True)
    bob, alice, olga = (person(k).entra_id for k in ("bob", "alice", "olga"))
    assert graph.role_assignments_of(bob) == [] and graph.eligible_roles_of(bob) == []
    groups = graph.role_groups_of(bob)
    assert len(groups.held) == 2 and groups.claimable == (), "an eligibility for a group already held adds nothing"
    assert graph.role_assignments_of([bob, *groups.held]) == ["Global Administrator"]
    assert graph.eligible_roles_of([bob, *groups.held]) == ["Privileged Role Administrator"]
    assert graph.role_groups_of(alice).held == () and len(graph.role_groups_of(alice).claimable) == 1
    assert graph.role_groups_of(olga).held == () and len(graph.role_groups_of(olga).claimable) == 1
    assert graph.role_groups_of(person("paula").entra_id) == RoleGroups(), "a synced group is not role-assignable"
    in_query = [r for r in entra_control.requests("graph") if r["path"].endswith("/roleAssignments")
                and "principalId in (" in unquote_plus(r["query"])]
    assert in_query, "several principals are asked in one query"
    entra_control.faults(pim_unlicensed=True)
    assert graph.role_groups_of(alice) == RoleGroups(), "no P2, no PIM for Groups"
    assert len(graph.role_groups_of(bob).held) == 2, "membership still counts"


def test_a_group_whose_properties_graph_withholds_is_never_read_as_not_role_assignable(
        entra_control: EntraControl) -> None:
    """An app that may read users but not groups (``GroupMember.Read.All`` not consented) still gets Bob's groups
    from ``transitiveMemberOf``, with every property null, ``isAssignableToRole`` among them: Graph returns limited
    information rather than 403. Read as "not role-assignable", that null dropped the group Bob holds Global
    Administrator through, and nothing failed. Now such a group counts as possibly role-assignable, and the owners'
    read, which needs a group permission, refuses: the check fails closed."""
    entra_control.role_group("Tier0", members=("bob",))
    entra_control.assign_group("Tier0", "Global Administrator")
    entra_control.consent("User.Read.All", "RoleManagement.Read.Directory", "Organization.Read.All",
                          "PrivilegedEligibilitySchedule.Read.AzureADGroup",
                          "PrivilegedAssignmentSchedule.Read.AzureADGroup")
    bob = person("bob").entra_id
    with entra_control.graph() as graph:
        seen = graph._collect(f"/users/{bob}/transitiveMemberOf/microsoft.graph.group",
                              {"$select": "id,isAssignableToRole"}, what="read Bob's groups", crid="c-test")
        assert seen and all(g.get("isAssignableToRole") is None for g in seen), "the lab withholds it as Graph does"
        with pytest.raises(GraphPermissionError):
            graph.role_groups_of(bob)


def test_a_role_held_through_a_sixteenth_group_is_read_in_a_second_query(
        graph: GraphClient, entra_control: EntraControl) -> None:
    """Graph takes at most 15 values in ``principalId in (...)``: with Bob and sixteen role-assignable groups the
    principals are asked in turns, and a role given only to the last group is still found."""
    for n in range(16):
        entra_control.role_group(f"Ring {n:02}", members=("bob",))
    entra_control.assign_group("Ring 15", "Global Administrator")
    entra_control.assign_group("Ring 14", "Privileged Role Administrator", eligible=True)
    bob = person("bob").entra_id
    groups = graph.role_groups_of(bob)
    assert len(groups.held) == 16
    assert graph.role_assignments_of([bob, *groups.held]) == ["Global Administrator"]
    assert graph.eligible_roles_of([bob, *groups.held]) == ["Privileged Role Administrator"]
    queries = [unquote_plus(r["query"]) for r in entra_control.requests("graph")
               if r["path"].endswith("/roleAssignments")]
    assert len(queries) == 2 and all(q.count("'") <= 30 for q in queries), queries


def test_an_owned_role_assignable_group_is_found_without_pim_on_any_page(
        graph: GraphClient, entra_control: EntraControl) -> None:
    """Ownership is no PIM feature: without Entra ID P2 the owner of a role-assignable group may still add himself,
    so it is read from the groups' owners whatever the licence, across every page of the group list (Graph gives
    100 a page): an owned group listed after the first hundred is still found."""
    entra_control.faults(pim_unlicensed=True)
    for n in range(101):
        entra_control.role_group(f"Filler {n:03}")
    entra_control.role_group("Zz Tier0", owners=("olga",))
    found = graph.role_groups_of(person("olga").entra_id)
    assert found.held == () and len(found.claimable) == 1
    pages = [r for r in entra_control.requests("graph") if r["path"].endswith("/groups")]
    assert len(pages) >= 2, "the group list was read past its first page"
    assert graph.role_groups_of(person("alice").entra_id) == RoleGroups()


def test_a_tenant_without_pim_has_nobody_eligible(graph: GraphClient, entra_control: EntraControl) -> None:
    """Without Entra ID P2 (or Governance) Graph answers 400 AadPremiumLicenseRequired: there is no PIM, so no role
    can be eligible; any other refusal still raises."""
    entra_control.faults(pim_unlicensed=True)
    assert graph.eligible_roles_of(person("bob").entra_id) == []
    entra_control.faults(pim_unlicensed=False, fail_next_5xx=20)
    with pytest.raises(GraphUnavailableError):
        graph.eligible_roles_of(person("bob").entra_id)


def test_organization_sync_and_ping(graph: GraphClient) -> None:
    org = graph.organization_sync()
    assert org.on_premises_sync_enabled is True
    assert org.last_sync is not None and org.last_password_sync is not None
    assert org.last_password_sync >= org.last_sync
    graph.ping()


def test_graph_times_parse_in_every_form_graph_uses() -> None:
    assert parse_graph_time("2024-05-01T12:34:56Z") == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert parse_graph_time("2024-05-01T12:34:56.1234567Z") is not None
    assert parse_graph_time("0001-01-01T00:00:00Z") is None
    assert parse_graph_time(None) is None
    assert parse_graph_time("garbage") is None


def test_every_call_sends_a_client_request_id(entra_control: EntraControl) -> None:
    echoed: list[str] = []
    with entra_control.graph() as graph:
        graph._http.event_hooks["response"].append(lambda r: echoed.append(r.headers.get("client-request-id", "")))
        graph.get_user(person("alice").upn, client_request_id="11111111-2222-3333-4444-555555555555")
        graph.ping()
    assert echoed[0] == "11111111-2222-3333-4444-555555555555", "Graph echoes the id the bot sent"
    assert len(echoed[1]) == 36 and echoed[1] != echoed[0], "a new one when the caller gives none"


# --- faults on reads ----------------------------------------------------------------------------------------
def test_throttling_is_retried_after_retry_after(entra_control: EntraControl) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    entra_control.faults(throttle_next=2, retry_after=0.2)
    with entra_control.graph(sleep=sleep) as graph:
        assert graph.get_user(person("alice").upn) is not None
    assert waits == [0.2, 0.2]
    logged = entra_control.requests("graph")
    assert [r["status"] for r in logged] == [429, 429, 200]
    times = _times(logged)
    assert all(b - a >= timedelta(seconds=0.2) for a, b in itertools.pairwise(times))


def test_throttling_beyond_max_retries_is_graph_throttled(entra_control: EntraControl) -> None:
    entra_control.faults(throttle_next=5, retry_after=0.1)
    with entra_control.graph(max_retries=2) as graph, pytest.raises(GraphThrottledError) as err:
        graph.get_user(person("alice").upn, client_request_id="aaaaaaaa-0000-0000-0000-000000000001")
    assert err.value.retry_after == pytest.approx(0.1)
    assert err.value.code == "TooManyRequests" and err.value.status == 429
    assert err.value.request_id and err.value.client_request_id == "aaaaaaaa-0000-0000-0000-000000000001"
    assert len(entra_control.requests("graph")) == 3


def test_a_retry_after_too_long_to_wait_is_not_slept(entra_control: EntraControl) -> None:
    entra_control.faults(throttle_next=1, retry_after=30)
    slept: list[float] = []
    with entra_control.graph(max_retry_wait_s=5, sleep=slept.append) as graph, \
            pytest.raises(GraphThrottledError, match="throttling") as err:
        graph.ping()
    assert err.value.retry_after == 30 and slept == []


def test_5xx_is_retried_then_unavailable(entra_control: EntraControl) -> None:
    entra_control.faults(fail_next_5xx=2)
    with entra_control.graph(max_retries=2) as graph:
        assert graph.get_user(person("alice").upn) is not None
    entra_control.faults(fail_next_5xx=5)
    with entra_control.graph(max_retries=1) as graph, pytest.raises(GraphUnavailableError) as err:
        graph.organization_sync()
    assert err.value.code == "serviceNotAvailable" and err.value.status == 503 and err.value.request_id


def test_graph_out_of_reach_is_unavailable(entra_control: EntraControl) -> None:
    client = GraphClient("https://127.0.0.1:1/v1.0", entra_control.app_tokens(), ca_file=entra_control.d["ca_file"],
                         max_retries=1, backoff_s=0.01, timeout=5)
    with client, pytest.raises(GraphUnavailableError, match="could not be reached"):
        client.ping()


def test_a_token_is_never_sent_to_another_host(graph: GraphClient) -> None:
    with pytest.raises(GraphError, match=r"not .*the call was not made"):
        graph.get_reset_operation(access_token="t", location="https://evil.example/v1.0/users/x/operations/y")


# --- resetPassword ------------------------------------------------------------------------------------------
def test_hank_resets_alice_and_ad_must_change(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, restore_alice: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = person("alice")
    password = entra_control.fresh_password()
    entra_control.faults(reset_retry_after=1)  # Graph may send one (documented as optional): it is honoured
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    op = graph.reset_password(access_token=hank_token, user_id=alice.entra_id, new_password=SecretStr(password),
                              poll_timeout_s=30, sleep=sleep, client_request_id="cccccccc-0000-0000-0000-000000000001")
    assert op.status == "succeeded" and op.succeeded and op.done, op
    assert op.status_detail is None
    assert op.created is not None and op.last_action is not None
    assert op.location.startswith(f"{entra_control.d['graph_base']}/users/{alice.entra_id}/authentication/operations/")
    assert op.client_request_id == "cccccccc-0000-0000-0000-000000000001" and op.request_id
    assert waits[0] == 1.0, "the first poll waits the 202's Retry-After"
    assert entra_control.pwd_last_set(alice) == 0, "AD: must change at next logon"
    [logged] = entra_control.operations()
    assert (logged["upn"], logged["caller"], logged["status"]) == (alice.upn, person("hank").upn, "succeeded")
    user = graph.get_user(alice.upn)
    assert user is not None and user.last_password_change is not None
    assert op.created is not None and user.last_password_change >= op.created
    # The scan covers the libraries' own DEBUG logs (httpx, httpcore), not only the bot's.
    assert {"httpx", "httpcore.http11", "bot.clients.graph"} <= {r.name for r in caplog.records}
    assert not entra_control.leaks(password, caplog.records, op)
    assert not entra_control.leaks(hank_token, caplog.records, op, graph)


def test_ad_refusing_a_too_short_password_fails_the_operation(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, restore_alice: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Synced users get only the cloud's banned-word check; length is AD's verdict, written back as 33008."""
    caplog.set_level(logging.DEBUG)
    alice = person("alice")
    before = entra_control.pwd_last_set(alice)
    op = graph.reset_password(access_token=hank_token, user_id=alice.upn, new_password=SecretStr("Ab1!"),
                              poll_timeout_s=30)
    assert op.status == "failed" and not op.succeeded
    assert op.status_detail is not None and op.status_detail.startswith("33008: ")
    assert "too short" in op.status_detail
    assert entra_control.pwd_last_set(alice) == before, "a refusal leaves AD untouched"
    assert not entra_control.leaks("Ab1!", caplog.records, op)


def test_a_cloud_banned_password_is_rejected_with_microsofts_reason(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Qwerty!" + entra_control.fresh_password()
    with pytest.raises(GraphRejectedError, match="blocked by your administrator") as err:
        graph.reset_password(access_token=hank_token, user_id=person("bob").upn, new_password=SecretStr(password))
    assert err.value.code == "Request_BadRequest" and err.value.status == 400
    assert err.value.request_id and err.value.client_request_id
    assert entra_control.operations() == []
    assert not entra_control.leaks(password, caplog.records, err.value)


def test_helpdesk_may_not_reset_a_global_admin(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = entra_control.fresh_password() + "Long"
    with pytest.raises(GraphPermissionError, match="Entra role") as err:
        graph.reset_password(access_token=hank_token, user_id=person("paula").entra_id,
                             new_password=SecretStr(password), client_request_id="dddddddd-0000-0000-0000-000000000001")
    e = err.value
    assert e.code == "Authorization_RequestDenied" and e.status == 403
    assert "Insufficient privileges" in str(e)
    assert e.request_id and e.client_request_id == "dddddddd-0000-0000-0000-000000000001"
    assert "\n" not in str(e)
    assert not entra_control.leaks(password, caplog.records, e)
    assert not entra_control.leaks(hank_token, caplog.records, e)


def test_the_app_token_cannot_reset(entra_control: EntraControl, graph: GraphClient) -> None:
    """resetPassword supports delegated tokens only: an app token is refused (403)."""
    app_token = entra_control.app_tokens().token()
    with pytest.raises(GraphPermissionError):
        graph.reset_password(access_token=app_token, user_id=person("bob").upn,
                             new_password=SecretStr(entra_control.fresh_password()))


def test_throttled_reset_succeeds_after_honouring_retry_after(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, restore_alice: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = entra_control.fresh_password()
    entra_control.faults(throttle_next=2, retry_after=0.2, reset_retry_after=1)
    op = graph.reset_password(access_token=hank_token, user_id=person("alice").upn,
                              new_password=SecretStr(password), poll_timeout_s=30)
    assert op.succeeded, op
    logged = entra_control.requests("graph")
    posts = [r for r in logged if r["method"] == "POST"]
    assert [r["status"] for r in posts] == [429, 429, 202]
    times = _times(posts)
    assert all(b - a >= timedelta(seconds=0.2) for a, b in itertools.pairwise(times))
    first_poll = next(r for r in logged if r["method"] == "GET")
    assert _times([first_poll])[0] - times[-1] >= timedelta(seconds=1), "the 202's Retry-After: 1"
    assert len(entra_control.operations()) == 1, "a throttled POST never created an operation"
    assert not entra_control.leaks(password, caplog.records, op)


def test_a_reset_throttled_beyond_max_retries(entra_control: EntraControl, hank_token: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = entra_control.fresh_password()
    entra_control.faults(throttle_next=10, retry_after=0.1)
    with entra_control.graph(max_retries=1) as graph, pytest.raises(GraphThrottledError) as err:
        graph.reset_password(access_token=hank_token, user_id=person("alice").upn, new_password=SecretStr(password))
    assert err.value.retry_after == pytest.approx(0.1)
    assert entra_control.operations() == []
    assert not entra_control.leaks(password, caplog.records, err.value)


def test_a_reset_through_5xx(entra_control: EntraControl, hank_token: str, restore_alice: None) -> None:
    entra_control.faults(fail_next_5xx=1)
    with entra_control.graph(max_retries=2) as graph:
        op = graph.reset_password(access_token=hank_token, user_id=person("alice").upn,
                                  new_password=SecretStr(entra_control.fresh_password()), poll_timeout_s=30)
    assert op.succeeded
    entra_control.faults(fail_next_5xx=3)
    with entra_control.graph(max_retries=1) as graph, pytest.raises(GraphUnavailableError):
        graph.reset_password(access_token=hank_token, user_id=person("bob").upn,
                             new_password=SecretStr(entra_control.fresh_password()))


@pytest.mark.parametrize(("mode", "prefix"), [("disabled", "SSPR_0010: "), ("offline", "SSPR_0030: ")])
def test_writeback_disabled_or_offline_fails_the_operation(
    entra_control: EntraControl, graph: GraphClient, hank_token: str, mode: str, prefix: str,
) -> None:
    bob = person("bob")
    before = entra_control.pwd_last_set(bob)
    entra_control.faults(writeback=mode, offline_delay_ms=200)
    op = graph.reset_password(access_token=hank_token, user_id=bob.upn,
                              new_password=SecretStr(entra_control.fresh_password()), poll_timeout_s=30)
    assert op.status == "failed"
    assert op.status_detail is not None and op.status_detail.startswith(prefix)
    assert entra_control.pwd_last_set(bob) == before


def test_without_retry_after_the_operation_is_polled_at_a_short_capped_interval(
    entra_control: EntraControl, graph: GraphClient, hank_token: str,
) -> None:
    """Microsoft's 202 to resetPassword need not carry Retry-After (the lab, like the documented example, sends
    none): the polls then come at a short interval, fast at first, then growing a little to a cap, never the
    doubling to seconds that showed a writeback finished at 4.8 s at 8.75 s."""
    entra_control.faults(writeback="offline", offline_delay_ms=3000)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    op = graph.reset_password(access_token=hank_token, user_id=person("bob").upn,
                              new_password=SecretStr(entra_control.fresh_password()), poll_timeout_s=30, sleep=sleep)
    assert op.status == "failed", op
    assert waits[0] == POLL_FAST_S, "no Retry-After: the first poll comes at once, nearly"
    assert max(waits) == POLL_CAP_S, waits
    assert all(a <= b for a, b in itertools.pairwise(waits)), waits
    gets = [r for r in entra_control.requests("graph") if r["method"] == "GET"]
    assert len(gets) <= POLL_FAST_WINDOW_S / POLL_FAST_S + 1 / POLL_CAP_S + 6, "capped, not a busy loop"


def test_polling_is_bounded_and_the_operation_can_be_followed_later(
    entra_control: EntraControl, graph: GraphClient, hank_token: str,
) -> None:
    entra_control.faults(writeback="offline", offline_delay_ms=1500, reset_retry_after=1)
    started = time.monotonic()
    op = graph.reset_password(access_token=hank_token, user_id=person("bob").upn,
                              new_password=SecretStr(entra_control.fresh_password()), poll_timeout_s=0.3)
    assert not op.done and op.status in ("notStarted", "running")
    assert time.monotonic() - started < 1.0, "the 202's Retry-After: 1 is cut to what is left of the bound"
    later = graph.get_reset_operation(access_token=hank_token, location=op.location)
    assert later.id == op.id


# --- Temporary Access Pass ----------------------------------------------------------------------------------
def test_an_authentication_administrator_creates_a_temporary_access_pass(
        graph: GraphClient, caplog: pytest.LogCaptureFixture, entra_control: EntraControl,
        agent_tokens: DelegatedTokens) -> None:
    """A TAP is made with the agent's delegated token only (the client has no app-only way to make one), so
    Entra's role table decides: here an Authentication Administrator's, for a user with no admin role."""
    caplog.set_level(logging.DEBUG)
    entra_control.assign("hedy", "Authentication Administrator")
    token = agent_tokens.token_for(entra_control.link(agent_tokens, "hedy")).access_token
    tap = graph.create_temporary_access_pass(user_id=person("alice").upn, lifetime_minutes=60, usable_once=True,
                                             access_token=token)
    value = tap.temporary_access_pass.get_secret_value()
    assert len(value) >= 8
    assert (tap.lifetime_minutes, tap.usable_once, tap.is_usable) == (60, True, True)
    assert tap.id and tap.start is not None
    assert not entra_control.leaks(value, caplog.records, tap)
    made = [r for r in entra_control.requests("graph") if r["path"].endswith("/temporaryAccessPassMethods")]
    assert [(r["user"], r["status"]) for r in made] == [(person("hedy").upn, 201)], "made as hedy, not as the app"
    with pytest.raises(ValueError, match="between 10 and 43200"):
        graph.create_temporary_access_pass(user_id=person("alice").upn, lifetime_minutes=5, access_token=token)


def test_a_helpdesk_admin_may_not_create_a_temporary_access_pass(graph: GraphClient, hank_token: str) -> None:
    with pytest.raises(GraphPermissionError) as err:
        graph.create_temporary_access_pass(user_id=person("alice").upn, access_token=hank_token)
    assert err.value.code == "Authorization_RequestDenied"


# --- containment: revoking sessions, deleting a TAP ----------------------------------------------------------------
def _sessions(entra_control: EntraControl, key: str) -> dict[str, Any]:
    seen: dict[str, Any] = entra_control.call("GET", f"/sessions?upn={person(key).upn}")
    return seen


def test_an_agent_revokes_a_users_sign_in_sessions(graph: GraphClient, hank_token: str,
                                                   entra_control: EntraControl) -> None:
    graph.revoke_sign_in_sessions(user_id=person("alice").upn, access_token=hank_token)
    assert _sessions(entra_control, "alice")["revocations"] == 1
    revoked = [r for r in entra_control.requests("graph") if r["path"].endswith("/revokeSignInSessions")]
    assert [(r["user"], r["status"]) for r in revoked] == [(person("hank").upn, 200)], "as hank, not as the app"
    with pytest.raises(GraphPermissionError):  # a Helpdesk Administrator may not sign out a Global Administrator
        graph.revoke_sign_in_sessions(user_id=person("paula").upn, access_token=hank_token)
    assert _sessions(entra_control, "paula")["revocations"] == 0


def test_a_deleted_temporary_access_pass_is_gone_and_a_second_delete_says_so(
        graph: GraphClient, entra_control: EntraControl, agent_tokens: DelegatedTokens, hank_token: str) -> None:
    entra_control.assign("hedy", "Authentication Administrator")
    token = agent_tokens.token_for(entra_control.link(agent_tokens, "hedy")).access_token
    tap = graph.create_temporary_access_pass(user_id=person("bob").upn, access_token=token)
    with pytest.raises(GraphPermissionError):  # the same role as creating one
        graph.delete_temporary_access_pass(user_id=person("bob").upn, method_id=tap.id, access_token=hank_token)
    assert [t["id"] for t in _sessions(entra_control, "bob")["taps"]] == [tap.id]
    assert graph.delete_temporary_access_pass(user_id=person("bob").upn, method_id=tap.id, access_token=token)
    assert _sessions(entra_control, "bob")["taps"] == []
    assert not graph.delete_temporary_access_pass(user_id=person("bob").upn, method_id=tap.id, access_token=token)


def test_an_agent_lists_a_users_temporary_access_pass_without_its_value(
        graph: GraphClient, entra_control: EntraControl, agent_tokens: DelegatedTokens, hank_token: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The list recovery reads after a bot stopped mid-TAP: the one pass (a new one replaced the first), when Graph
    made it, never its value; a Helpdesk Administrator, who may not manage passes, may not read them either."""
    caplog.set_level(logging.DEBUG)
    entra_control.assign("hedy", "Authentication Administrator")
    token = agent_tokens.token_for(entra_control.link(agent_tokens, "hedy")).access_token
    graph.create_temporary_access_pass(user_id=person("bob").upn, access_token=token)
    tap = graph.create_temporary_access_pass(user_id=person("bob").upn, access_token=token)
    [listed] = graph.list_temporary_access_passes(user_id=person("bob").upn, access_token=token)
    assert (listed.id, listed.lifetime_minutes, listed.is_usable) == (tap.id, 60, True)
    assert listed.created is not None and listed.created.tzinfo is not None
    assert not entra_control.leaks(tap.temporary_access_pass.get_secret_value(), caplog.records, listed)
    with pytest.raises(GraphPermissionError):
        graph.list_temporary_access_passes(user_id=person("bob").upn, access_token=hank_token)
    assert graph.delete_temporary_access_pass(user_id=person("bob").upn, method_id=tap.id, access_token=token)
    assert graph.list_temporary_access_passes(user_id=person("bob").upn, access_token=token) == []


def test_graph_user_is_a_frozen_value() -> None:
    user = GraphUser.from_graph({"id": "1", "userPrincipalName": "a@b", "onPremisesSyncEnabled": None})
    with pytest.raises(AttributeError):
        user.id = "2"  # type: ignore[misc]
    assert not user.synced


def test_reset_errors_never_hold_the_password_even_if_graph_echoes_it(entra_control: EntraControl) -> None:
    """Defence in depth: were Graph's message to quote the password, the exception would not."""
    password = entra_control.fresh_password()
    response = httpx.Response(400, json={"error": {"code": "Request_BadRequest", "message": f"bad: {password}"}},
                              request=httpx.Request("POST", "https://graph.example/v1.0/x"))
    err = _graph_error(response, what="reset", delegated=True, client_request_id="c", secret=password, retries=0)
    assert isinstance(err, GraphRejectedError)
    assert password not in str(err) and "[redacted]" in str(err)
    assert not entra_control.leaks(password, [], err)
    # ...and the scanner itself finds what it looks for.
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "set %s", (password,), None)
    assert entra_control.leaks(password, [record], GraphError("x", code=password), ValueError(password))


def test_a_post_that_may_have_taken_effect_is_not_repeated() -> None:
    """500/502/504 after a POST may come from a reset that happened: repeating it would meet password history.
    (The lab only fails with 503, so this one case runs against an in-process transport.)"""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(504, json={"error": {"code": "gatewayTimeout", "message": "Gateway timeout."}},
                              headers={"request-id": "r-1"})

    class Tokens:
        def token(self) -> str:
            return "app-token"

    client = GraphClient("https://graph.example/v1.0", Tokens(), max_retries=3, backoff_s=0.0)
    client._http = httpx.Client(transport=httpx.MockTransport(answer))
    with client:
        with pytest.raises(GraphUnavailableError, match="outcome is unknown") as err:
            client.reset_password(access_token="t", user_id="u", new_password=SecretStr("Secret!Pass1"))
        assert seen == ["POST"] and err.value.request_id == "r-1"
        seen.clear()
        with pytest.raises(GraphUnavailableError):
            client.ping()
        assert seen == ["GET"] * 4, "a read is retried"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    def after(value: str) -> float | None:
        return _retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert after("0.5") == 0.5
    assert after("3") == 3.0
    assert after("nan") is None
    assert after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (after(later) or 0) <= 30
