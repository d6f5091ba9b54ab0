"""Access reviews of access package assignments through Microsoft's Graph SDK for Python
(msgraph-sdk) against a running `steward serve --test-clock`: definitions, instances opened by
the clock, reviewers deciding with their own tokens, recommendations, and the results applied
through the normal removal flow (the group memberships the package granted are revoked).

Typed SDK request builders and models for every Graph call; raw HTTP only for Steward's
test-only routes (the clock, the job queue). Nothing sleeps: the test moves the clock, drains
the job queue, then looks. The stories share the server's clock with the other SDK tests and
run after them (file order), so each works relative to the clock's "now".

  1. test_quarterly_review_by_managers_removes_what_was_denied_or_left_unanswered (and the
     auditors' history report of it, downloaded as CSV)
  2. test_self_review_and_stopping_an_instance
  3. test_two_stage_review
  4. test_recommendations_follow_sign_ins
  5. test_bad_input_is_refused
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import urllib.request
import uuid
from typing import Optional

import pytest
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.access_reviews.definitions.item.instances.item.batch_record_decisions.batch_record_decisions_post_request_body import (
    BatchRecordDecisionsPostRequestBody,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_assignment_state import AccessPackageAssignmentState
from msgraph.generated.models.access_review_history_decision_filter import AccessReviewHistoryDecisionFilter
from msgraph.generated.models.access_review_history_definition import AccessReviewHistoryDefinition
from msgraph.generated.models.access_review_history_status import AccessReviewHistoryStatus
from msgraph.generated.models.access_review_instance import AccessReviewInstance
from msgraph.generated.models.access_review_instance_decision_item import AccessReviewInstanceDecisionItem
from msgraph.generated.models.access_review_query_scope import AccessReviewQueryScope
from msgraph.generated.models.access_review_reviewer_scope import AccessReviewReviewerScope
from msgraph.generated.models.access_review_schedule_definition import AccessReviewScheduleDefinition
from msgraph.generated.models.access_review_schedule_settings import AccessReviewScheduleSettings
from msgraph.generated.models.access_review_stage_settings import AccessReviewStageSettings
from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
from msgraph.generated.models.group import Group
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType

from sdk_support import (
    TOKEN,
    Clients,
    Naming,
    Person,
    admin_add,
    advance,
    assignments_of,
    drain,
    member_ids,
    now,
    refused,
    run,
    submit,
)

RUN = f"Rev{uuid.uuid4().hex[:8]}"
names = Naming(RUN)
ASSIGNMENTS = "/identityGovernance/entitlementManagement/accessPackageAssignments"
DAY = datetime.timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# the world: a catalog, and per story a group granted by a package with an admin-only policy
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Granted:
    group: Group
    package: AccessPackage
    policy: AccessPackageAssignmentPolicy


async def granted(c: GraphServiceClient, catalog_id: str, name: str) -> Granted:
    group = await names.new_group(c, name)
    package = await names.package_granting(c, catalog_id, group, name)
    policy = await c.identity_governance.entitlement_management.assignment_policies.post(AccessPackageAssignmentPolicy(
        display_name=f"{name}: assigned by administrators", description="direct assignment only",
        access_package=AccessPackage(id=package.id), allowed_target_scope=AllowedTargetScope.NotSpecified))
    return Granted(group, package, policy)


async def assign_all(c: GraphServiceClient, g: Granted, people: list[Person]) -> None:
    for p in people:
        await submit(c, admin_add(g.package, g.policy, p))
    drain()
    assert await member_ids(c, g.group) >= {p.id for p in people}


@pytest.fixture(scope="module")
def catalog_id() -> str:
    async def story(clients: Clients) -> str:
        em = clients().identity_governance.entitlement_management
        return (await em.catalogs.post(AccessPackageCatalog(display_name=f"{RUN} reviews"))).id

    return run(story)


# ---------------------------------------------------------------------------------------------
# helpers over the SDK
# ---------------------------------------------------------------------------------------------

def reviews(c: GraphServiceClient):
    return c.identity_governance.access_reviews.definitions


def scope_of(package: AccessPackage) -> AccessReviewQueryScope:
    return AccessReviewQueryScope(query=f"{ASSIGNMENTS}?$filter=(accessPackageId eq '{package.id}')",
                                  query_type="MicrosoftGraph")


def manager_reviewer() -> AccessReviewReviewerScope:
    return AccessReviewReviewerScope(query="./manager", query_type="MicrosoftGraph", query_root="decisions")


def user_reviewer(p: Person) -> AccessReviewReviewerScope:
    return AccessReviewReviewerScope(query=f"/users/{p.id}", query_type="MicrosoftGraph")


def one_time(days: int, **settings) -> AccessReviewScheduleSettings:
    return AccessReviewScheduleSettings(instance_duration_in_days=days, mail_notifications_enabled=False,
                                        reminder_notifications_enabled=False, **settings)


async def instances_of(c: GraphServiceClient, definition_id: str) -> list[AccessReviewInstance]:
    return (await reviews(c).by_access_review_schedule_definition_id(definition_id).instances.get()).value


def instance(c: GraphServiceClient, definition_id: str, instance_id: str):
    return reviews(c).by_access_review_schedule_definition_id(definition_id).instances.by_access_review_instance_id(
        instance_id)


async def decisions_of(c: GraphServiceClient, definition_id: str, instance_id: str) -> list[AccessReviewInstanceDecisionItem]:
    return (await instance(c, definition_id, instance_id).decisions.get()).value


async def mine(c: GraphServiceClient, definition_id: str, instance_id: str) -> list[AccessReviewInstanceDecisionItem]:
    """The caller's decisions to make (filterByCurrentUser(on='reviewer'))."""
    return (await instance(c, definition_id, instance_id).decisions.filter_by_current_user_with_on("reviewer").get()).value


def of(decisions: list[AccessReviewInstanceDecisionItem], p: Person) -> AccessReviewInstanceDecisionItem:
    found = [d for d in decisions if d.principal is not None and d.principal.id == p.id]
    assert len(found) == 1, f"{p.name}: {[d.principal.id for d in decisions]}"
    return found[0]


async def record(c: GraphServiceClient, definition_id: str, instance_id: str, decision_id: str, decision: str,
                 justification: Optional[str] = None) -> None:
    await instance(c, definition_id, instance_id).decisions.by_access_review_instance_decision_item_id(decision_id).patch(
        AccessReviewInstanceDecisionItem(decision=decision, justification=justification))


async def state_of(c: GraphServiceClient, p: Person, g: Granted) -> AccessPackageAssignmentState:
    got = await assignments_of(c, p, g.package)
    assert got, f"{p.name} has no assignment of {g.package.display_name}"
    return got[-1].state


def settle() -> None:
    """Moves the clock a minute (the sweep that opens and ends instances runs every second of
    it), then runs what was due, and what that queued (revocations), until nothing is left."""
    advance(datetime.timedelta(minutes=1))
    for _ in range(5):
        if drain() == 0:
            return


# ---------------------------------------------------------------------------------------------
# the stories
# ---------------------------------------------------------------------------------------------

def test_quarterly_review_by_managers_removes_what_was_denied_or_left_unanswered(catalog_id: str) -> None:
    async def story(clients: Clients) -> None:
        c = clients()
        g = await granted(c, catalog_id, "Ledger")
        manager = await names.new_person(c, "QManager")
        fallback = await names.new_person(c, "QFallback")
        ann, bob, cid = [await names.new_person(c, n, manager) for n in ("QAnn", "QBob", "QCid")]
        dee = await names.new_person(c, "QDee")  # no manager: the fallback reviews her
        await assign_all(c, g, [ann, bob, cid, dee])

        first_day = (now() + DAY).date()
        d = await reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} quarterly ledger review", description_for_reviewers="Does this person still need the ledger?",
            scope=scope_of(g.package), reviewers=[manager_reviewer()], fallback_reviewers=[user_reviewer(fallback)],
            settings=AccessReviewScheduleSettings(
                instance_duration_in_days=14, mail_notifications_enabled=False, reminder_notifications_enabled=True,
                justification_required_on_approval=True, default_decision_enabled=True, default_decision="Deny",
                auto_apply_decisions_enabled=True, recommendations_enabled=True,
                recurrence=PatternedRecurrence(
                    pattern=RecurrencePattern(type=RecurrencePatternType.AbsoluteMonthly, interval=3),
                    range=RecurrenceRange(type=RecurrenceRangeType.NoEnd, start_date=first_day)))))
        assert d.id and d.settings.recurrence.pattern.interval == 3, d
        assert (await reviews(c).by_access_review_schedule_definition_id(d.id).get()).display_name == d.display_name
        assert await instances_of(c, d.id) == [], "nothing opens before the first review day"

        advance(2 * DAY)
        settle()
        opened = await instances_of(c, d.id)
        assert len(opened) == 1 and opened[0].status == "InProgress", opened
        i = opened[0].id
        every = await decisions_of(c, d.id, i)
        assert {x.principal.id for x in every} == {ann.id, bob.id, cid.id, dee.id}
        assert all(x.decision == "NotReviewed" for x in every)

        m, f = clients(manager.token), clients(fallback.token)
        for_manager = await mine(m, d.id, i)
        assert {x.principal.id for x in for_manager} == {ann.id, bob.id, cid.id}
        assert {x.principal.id for x in await mine(f, d.id, i)} == {dee.id}
        assert await mine(clients(ann.token), d.id, i) == [], "nobody reviews their own access here"

        # Only a decision's reviewer may decide it; approving needs a justification here.
        await refused(record(m, d.id, i, of(every, dee).id, "Approve", "Knows the ledger"), 403)
        await refused(record(clients(ann.token), d.id, i, of(every, ann).id, "Approve", "I need it"), 403)
        await refused(record(m, d.id, i, of(every, bob).id, "Approve"), 400)
        await refused(record(m, d.id, i, of(every, bob).id, "Maybe", "?"), 400)

        await record(m, d.id, i, of(every, ann).id, "Deny", "Moved to another team")
        await record(m, d.id, i, of(every, bob).id, "Approve", "Still closes the books")
        await instance(f, d.id, i).batch_record_decisions.post(BatchRecordDecisionsPostRequestBody(
            decision="Approve", justification="Covers for the controller", principal_id=dee.id))
        # Cid is left unanswered: the default decision (Deny) applies when the instance ends.
        decided = await decisions_of(c, d.id, i)
        assert of(decided, ann).decision == "Deny" and of(decided, bob).decision == "Approve"
        assert of(decided, dee).decision == "Approve" and of(decided, cid).decision == "NotReviewed"
        assert of(decided, ann).reviewed_by.id == manager.id and of(decided, ann).justification == "Moved to another team"

        advance(14 * DAY)
        settle()
        ended = await instance(c, d.id, i).get()
        assert ended.status in ("Completed", "Applied"), ended.status
        final = await decisions_of(c, d.id, i)
        assert of(final, cid).decision == "Deny", "the default decision"
        for p in (ann, cid):
            assert of(final, p).apply_result == "AppliedSuccessfully", of(final, p).apply_result
            assert await state_of(c, p, g) == AccessPackageAssignmentState.Expired
        for p in (bob, dee):
            assert await state_of(c, p, g) == AccessPackageAssignmentState.Delivered
        assert await member_ids(c, g.group) == {bob.id, dee.id}, "removed from the target group"
        # Nothing can be decided any more.
        await refused(record(m, d.id, i, of(final, bob).id, "Deny", "Too late"), 409)

        # The auditors' history report over the review's period lists every decision of it.
        history = c.identity_governance.access_reviews.history_definitions
        h = await history.post(AccessReviewHistoryDefinition(
            display_name=f"{RUN} ledger audit",
            decisions=[AccessReviewHistoryDecisionFilter.Approve, AccessReviewHistoryDecisionFilter.Deny,
                       AccessReviewHistoryDecisionFilter.NotReviewed],
            review_history_period_start_date_time=opened[0].start_date_time - DAY,
            review_history_period_end_date_time=now() + DAY,
            scopes=[AccessReviewQueryScope(query="/identityGovernance/accessReviews/definitions",
                                           query_type="MicrosoftGraph")]))
        assert h.id and h.status == AccessReviewHistoryStatus.Done, h
        runs = (await history.by_access_review_history_definition_id(h.id).instances.get()).value
        assert len(runs) == 1 and runs[0].status == AccessReviewHistoryStatus.Done, runs
        ran = await history.by_access_review_history_definition_id(h.id).instances.by_access_review_history_instance_id(
            runs[0].id).generate_download_uri.post()
        assert ran.download_uri and ran.expiration_date_time > ran.run_date_time, ran
        rows = [r for r in download_csv(ran.download_uri) if r["Review definition id"] == d.id]
        listed = {r["Principal id"]: r for r in rows}
        assert set(listed) == {ann.id, bob.id, cid.id, dee.id}, rows
        for p, decision in ((ann, "Deny"), (bob, "Approve"), (cid, "Deny"), (dee, "Approve")):
            assert listed[p.id]["Decision"] == decision, listed[p.id]
            assert listed[p.id]["Principal"] == p.name, listed[p.id]
            assert listed[p.id]["Access package"] == g.package.display_name, listed[p.id]
        assert listed[ann.id]["Justification"] == "Moved to another team"
        assert listed[ann.id]["Reviewed by"] == manager.name and listed[dee.id]["Reviewed by"] == fallback.name

    run(story)


def download_csv(uri: str) -> list[dict[str, str]]:
    """A history report's CSV from its downloadUri, with the administrator's token (raw HTTP: the
    SDK has no request builder for what downloadUri points at)."""
    req = urllib.request.Request(uri, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers.get("Content-Type", "").startswith("text/csv"), r.headers
        return list(csv.DictReader(io.StringIO(r.read().decode("utf-8"), newline="")))


def test_self_review_and_stopping_an_instance(catalog_id: str) -> None:
    async def story(clients: Clients) -> None:
        c = clients()
        g = await granted(c, catalog_id, "Wiki")
        sam, sue = [await names.new_person(c, n) for n in ("SSam", "SSue")]
        await assign_all(c, g, [sam, sue])
        d = await reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} wiki self-review", scope=scope_of(g.package), reviewers=[],
            settings=one_time(7, default_decision_enabled=False, auto_apply_decisions_enabled=True)))
        settle()
        (opened,) = await instances_of(c, d.id)
        i = opened.id
        for p in (sam, sue):
            own = await mine(clients(p.token), d.id, i)
            assert [x.principal.id for x in own] == [p.id], "each reviews their own access"
        every = await decisions_of(c, d.id, i)
        await refused(record(clients(sam.token), d.id, i, of(every, sue).id, "Deny", "Not mine"), 403)
        await record(clients(sam.token), d.id, i, of(every, sam).id, "Deny", "I no longer need it")
        await record(clients(sue.token), d.id, i, of(every, sue).id, "Approve", "Writing the handbook")

        await instance(c, d.id, i).stop.post()
        settle()
        assert (await instance(c, d.id, i).get()).status in ("Completed", "Applied")
        assert await state_of(c, sam, g) == AccessPackageAssignmentState.Expired
        assert await state_of(c, sue, g) == AccessPackageAssignmentState.Delivered
        assert await member_ids(c, g.group) == {sue.id}
        await refused(record(clients(sue.token), d.id, i, of(every, sue).id, "Deny", "After the stop"), 409)

    run(story)


def test_two_stage_review(catalog_id: str) -> None:
    async def story(clients: Clients) -> None:
        c = clients()
        g = await granted(c, catalog_id, "Payroll")
        manager = await names.new_person(c, "TManager")
        owner = await names.new_person(c, "TOwner")
        xia, yan = [await names.new_person(c, n, manager) for n in ("TXia", "TYan")]
        await assign_all(c, g, [xia, yan])
        d = await reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} payroll two-stage review", scope=scope_of(g.package),
            settings=one_time(6, default_decision_enabled=True, default_decision="Deny", auto_apply_decisions_enabled=True),
            stage_settings=[
                AccessReviewStageSettings(stage_id="1", duration_in_days=3, reviewers=[manager_reviewer()],
                                          decisions_that_will_move_to_next_stage=["Approve", "NotReviewed"]),
                AccessReviewStageSettings(stage_id="2", depends_on=["1"], duration_in_days=3,
                                          reviewers=[user_reviewer(owner)]),
            ]))
        settle()
        (opened,) = await instances_of(c, d.id)
        i = opened.id
        m, o = clients(manager.token), clients(owner.token)
        first = await mine(m, d.id, i)
        assert {x.principal.id for x in first} == {xia.id, yan.id}
        assert await mine(o, d.id, i) == [], "stage 2 has not begun"
        await record(m, d.id, i, of(first, xia).id, "Approve", "Runs payroll")
        await record(m, d.id, i, of(first, yan).id, "Deny", "Left the team")

        advance(3 * DAY + datetime.timedelta(hours=1))
        settle()
        second = await mine(o, d.id, i)
        assert [x.principal.id for x in second] == [xia.id], "only what stage 1 approved goes on"
        assert await mine(m, d.id, i) == []
        await record(o, d.id, i, second[0].id, "Deny", "Payroll is outsourced now")

        advance(3 * DAY + datetime.timedelta(hours=1))
        settle()
        for p in (xia, yan):
            assert await state_of(c, p, g) == AccessPackageAssignmentState.Expired
        assert await member_ids(c, g.group) == set()

    run(story)


def test_recommendations_follow_sign_ins(catalog_id: str) -> None:
    async def story(clients: Clients) -> None:
        c = clients()
        g = await granted(c, catalog_id, "Reports")
        reviewer = await names.new_person(c, "RReviewer")
        active, idle = [await names.new_person(c, n) for n in ("RActive", "RIdle")]
        await assign_all(c, g, [active, idle])
        # Active uses Steward with her own token; Idle never does.
        await clients(active.token).identity_governance.entitlement_management.assignments.filter_by_current_user_with_on(
            "target").get()
        d = await reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} reports review", scope=scope_of(g.package), reviewers=[user_reviewer(reviewer)],
            settings=one_time(7, recommendations_enabled=True,
                              recommendation_look_back_duration=datetime.timedelta(days=30))))
        settle()
        (opened,) = await instances_of(c, d.id)
        every = await decisions_of(c, d.id, opened.id)
        assert of(every, active).recommendation == "Approve"
        lazy = of(every, idle)
        assert lazy.recommendation == "Deny"
        reason = (lazy.additional_data or {}).get("recommendationReason", "")
        assert "sign-in" in reason and "30 days" in reason, lazy.additional_data
        # The reviewer accepts the recommendations: Idle's becomes Deny, Active's Approve.
        await instance(clients(reviewer.token), d.id, opened.id).accept_recommendations.post()
        accepted = await decisions_of(c, d.id, opened.id)
        assert of(accepted, idle).decision == "Deny" and of(accepted, active).decision == "Approve"

    run(story)


def test_bad_input_is_refused(catalog_id: str) -> None:
    async def story(clients: Clients) -> None:
        c = clients()
        g = await granted(c, catalog_id, "Sandbox")
        daily = AccessReviewScheduleSettings(
            instance_duration_in_days=1,
            recurrence=PatternedRecurrence(pattern=RecurrencePattern(type=RecurrencePatternType.Daily, interval=1),
                                           range=RecurrenceRange(type=RecurrenceRangeType.NoEnd,
                                                                 start_date=now().date())))
        e = await refused(reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} daily", scope=scope_of(g.package), reviewers=[], settings=daily)), 400)
        assert "daily" in e.error.message and "not supported" in e.error.message, e.error.message
        await refused(reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} nowhere", reviewers=[],
            scope=AccessReviewQueryScope(query="/groups/x/transitiveMembers", query_type="MicrosoftGraph"),
            settings=one_time(3))), 400)
        await refused(reviews(c).post(AccessReviewScheduleDefinition(
            display_name=f"{RUN} nobody knows", scope=scope_of(g.package), settings=one_time(3),
            reviewers=[AccessReviewReviewerScope(query="./manager", query_type="MicrosoftGraph", query_root="users")])), 400)
        await refused(reviews(c).by_access_review_schedule_definition_id(str(uuid.uuid4())).get(), 404)

    run(story)
