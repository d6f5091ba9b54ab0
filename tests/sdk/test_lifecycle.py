"""The request lifecycle through Microsoft's Graph SDK for Python (msgraph-sdk, pinned in
requirements.txt) against a running `steward serve --test-clock`: people request access
packages with their own tokens, approvers decide stage by stage, the server's job worker
delivers and revokes group memberships, and time moves only through the test clock.

Typed SDK request builders and models for every Graph call. Raw HTTP only for Steward's
test-only routes (GET/POST /ops/clock, POST /ops/jobs/drain), and the `steward` CLI (as a
subprocess) for personal tokens. Nothing sleeps: the test moves the clock, then drains the
job queue, then looks.

Configuration (tests/sdk/run.sh sets all of them):
  STEWARD_BASE_URL           e.g. http://127.0.0.1:18080/v1.0
  STEWARD_TOKEN              bearer token of a global administrator
  STEWARD_TEST_BIN           the steward binary the server runs (for `steward token create`)
  STEWARD_TEST_DATABASE_URL  the server's database (the CLI writes tokens there)

The stories share one clock and run in file order; each works relative to the clock's "now"
and leaves nothing pending that a later clock move could trip over:
  1. test_two_stage_approval_delivers     manager, then a group member approve; delivery
  2. test_denied_request                  the manager denies; another request is cancelled
  3. test_request_times_out               nobody decides; three days pass
  4. test_extension_moves_the_end         userUpdate through both stages
  5. test_self_removal                    userRemove
  6. test_admin_add_and_remove            adminAdd, adminRemove
  7. test_scheduled_start                 scheduled until the clock passes the start
  8. test_expiry                          the end of the schedule passes
  9. test_automatic_assignment_follows_department   attributeRuleMembers + PATCH user
 10. test_separation_of_duties            incompatible package: 422 naming the conflict
"""
from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Optional

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.item.access_package_assignment_request_item_request_builder import (
    AccessPackageAssignmentRequestItemRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.assignment_requests_request_builder import (
    AssignmentRequestsRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.filter_by_current_user_with_on.filter_by_current_user_with_on_request_builder import (
    FilterByCurrentUserWithOnRequestBuilder,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_answer_string import AccessPackageAnswerString
from msgraph.generated.models.access_package_approval_stage import AccessPackageApprovalStage
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_approval_settings import AccessPackageAssignmentApprovalSettings
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_assignment_requestor_settings import AccessPackageAssignmentRequestorSettings
from msgraph.generated.models.access_package_assignment_state import AccessPackageAssignmentState
from msgraph.generated.models.access_package_automatic_request_settings import AccessPackageAutomaticRequestSettings
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.access_package_text_input_question import AccessPackageTextInputQuestion
from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
from msgraph.generated.models.approval_stage import ApprovalStage
from msgraph.generated.models.attribute_rule_members import AttributeRuleMembers
from msgraph.generated.models.entitlement_management_schedule import EntitlementManagementSchedule
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.group import Group
from msgraph.generated.models.group_members import GroupMembers
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.requestor_manager import RequestorManager
from msgraph.generated.models.user import User

from sdk_support import (
    BASE,
    Clients,
    Naming,
    Person,
    admin_add,
    advance,
    assignments_of,
    aware,
    drain,
    em_of,
    member_ids,
    now,
    refused,
    run,
    submit,
)

RUN = f"Life{uuid.uuid4().hex[:8]}"
_names = Naming(RUN)
new_group, new_person, package_granting = _names.new_group, _names.new_person, _names.package_granting

POLICY_DAYS = 30  # the two-stage policy's expiration
STAGE_DAYS = 2  # each approval stage's durationBeforeAutomaticDenial
TICKET_PATTERN = "[A-Z]+-[0-9]+"

# ---------------------------------------------------------------------------------------------
# the world: catalog, groups, packages, policies, approvers
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class World:
    catalog_id: str
    tools_group: Group  # granted by `package` (Member)
    approvers_group: Group  # stage 2 approvers
    auto_group: Group  # granted by `auto_package`
    package: AccessPackage  # two-stage approval, a question, custom schedules allowed
    policy: AccessPackageAssignmentPolicy
    question_id: str
    auto_package: AccessPackage
    auto_policy: AccessPackageAssignmentPolicy
    manager: Person
    approver: Person  # member of approvers_group
    stranger: Person


@pytest.fixture(scope="module")
def world() -> World:
    async def story(clients: Clients) -> World:
        c = clients()
        em = em_of(c)
        catalog = await em.catalogs.post(AccessPackageCatalog(display_name=f"{RUN} lifecycle"))
        tools = await new_group(c, "Sales Tools")
        approvers = await new_group(c, "Approvers")
        auto = await new_group(c, "Sales Everyone")
        package = await package_granting(c, catalog.id, tools, "Sales tools")
        auto_package = await package_granting(c, catalog.id, auto, "Sales everyone")

        manager = await new_person(c, "Manager")
        approver = await new_person(c, "Approver")
        stranger = await new_person(c, "Stranger")
        await c.groups.by_group_id(approvers.id).members.ref.post(
            ReferenceCreate(odata_id=f"{BASE}/directoryObjects/{approver.id}"))

        policy = await em.assignment_policies.post(AccessPackageAssignmentPolicy(
            display_name="Two-stage self-service", description="manager, then an approver",
            access_package=AccessPackage(id=package.id),
            allowed_target_scope=AllowedTargetScope.AllMemberUsers,
            expiration=ExpirationPattern(type=ExpirationPatternType.AfterDuration,
                                         duration=datetime.timedelta(days=POLICY_DAYS)),
            requestor_settings=AccessPackageAssignmentRequestorSettings(
                enable_targets_to_self_add_access=True, enable_targets_to_self_update_access=True,
                enable_targets_to_self_remove_access=True, allow_custom_assignment_schedule=True),
            request_approval_settings=AccessPackageAssignmentApprovalSettings(
                is_approval_required_for_add=True, is_approval_required_for_update=True,
                is_requestor_justification_required=True,
                stages=[
                    AccessPackageApprovalStage(duration_before_automatic_denial=datetime.timedelta(days=STAGE_DAYS),
                                               is_approver_justification_required=True, is_escalation_enabled=False,
                                               primary_approvers=[RequestorManager(manager_level=1)]),
                    AccessPackageApprovalStage(duration_before_automatic_denial=datetime.timedelta(days=STAGE_DAYS),
                                               is_approver_justification_required=False, is_escalation_enabled=False,
                                               primary_approvers=[GroupMembers(group_id=approvers.id, description="Approvers")]),
                ]),
            questions=[AccessPackageTextInputQuestion(text="Ticket number?", is_required=True, sequence=1,
                                                      is_single_line_question=True, regex_pattern=TICKET_PATTERN)]))
        assert len(policy.questions) == 1 and policy.questions[0].id, policy.questions
        assert policy.request_approval_settings.stages[1].duration_before_automatic_denial == datetime.timedelta(days=STAGE_DAYS)

        auto_policy = await em.assignment_policies.post(AccessPackageAssignmentPolicy(
            display_name="Everyone in Sales", description="automatic, by department",
            access_package=AccessPackage(id=auto_package.id),
            allowed_target_scope=AllowedTargetScope.SpecificDirectoryUsers,
            specific_allowed_targets=[AttributeRuleMembers(description="Sales department",
                                                           membership_rule='user.department -eq "Sales"')],
            automatic_request_settings=AccessPackageAutomaticRequestSettings(
                request_access_for_allowed_targets=True, remove_access_when_target_leaves_allowed_targets=True,
                grace_period_before_access_removal=datetime.timedelta(0))))
        assert auto_policy.automatic_request_settings.request_access_for_allowed_targets is True
        assert isinstance(auto_policy.specific_allowed_targets[0], AttributeRuleMembers)
        drain()  # the new automatic policy's first reconciliation (nobody is in Sales yet)
        return World(catalog.id, tools, approvers, auto, package, policy, policy.questions[0].id, auto_package,
                     auto_policy, manager, approver, stranger)

    return run(story)


# ---------------------------------------------------------------------------------------------
# helpers over the SDK
# ---------------------------------------------------------------------------------------------

def answer(w: World, value: str) -> AccessPackageAnswerString:
    return AccessPackageAnswerString(value=value, display_value=value,
                                     answered_question=AccessPackageTextInputQuestion(id=w.question_id))


def schedule(start: Optional[datetime.datetime], end: datetime.datetime) -> EntitlementManagementSchedule:
    return EntitlementManagementSchedule(
        start_date_time=start, expiration=ExpirationPattern(type=ExpirationPatternType.AfterDateTime, end_date_time=end))


def user_add(w: World, justification: Optional[str] = "Quarter close", ticket: Optional[str] = "FIN-42",
             sched: Optional[EntitlementManagementSchedule] = None) -> AccessPackageAssignmentRequest:
    return AccessPackageAssignmentRequest(
        request_type=AccessPackageRequestType.UserAdd, justification=justification,
        answers=[answer(w, ticket)] if ticket is not None else None, schedule=sched,
        assignment=AccessPackageAssignment(access_package=AccessPackage(id=w.package.id),
                                           assignment_policy=AccessPackageAssignmentPolicy(id=w.policy.id)))


async def get_request(c: GraphServiceClient, rid: str) -> AccessPackageAssignmentRequest:
    qp = AccessPackageAssignmentRequestItemRequestBuilder.AccessPackageAssignmentRequestItemRequestBuilderGetQueryParameters(
        expand=["assignment", "accessPackage", "requestor"])
    return await em_of(c).assignment_requests.by_access_package_assignment_request_id(rid).get(
        request_configuration=RequestConfiguration(query_parameters=qp))


async def my_requests(c: GraphServiceClient, package: Optional[AccessPackage] = None) -> list[AccessPackageAssignmentRequest]:
    """The caller's requests (filterByCurrentUser(on='target')), of `package` only if given."""
    qp = FilterByCurrentUserWithOnRequestBuilder.FilterByCurrentUserWithOnRequestBuilderGetQueryParameters(
        expand=["accessPackage"], orderby=["createdDateTime"])
    got = (await em_of(c).assignment_requests.filter_by_current_user_with_on("target").get(
        request_configuration=RequestConfiguration(query_parameters=qp))).value
    return [r for r in got if package is None or r.access_package.id == package.id]


async def stages(c: GraphServiceClient, rid: str) -> list[ApprovalStage]:
    return (await em_of(c).access_package_assignment_approvals.by_approval_id(rid).stages.get()).value


async def decide(c: GraphServiceClient, rid: str, stage_id: str, result: str, justification: Optional[str]) -> None:
    await em_of(c).access_package_assignment_approvals.by_approval_id(rid).stages.by_approval_stage_id(stage_id).patch(
        ApprovalStage(review_result=result, justification=justification))


async def approve_both_stages(clients: Clients, w: World, rid: str) -> None:
    """The requestor's manager approves stage 1, then the approvers group's member stage 2."""
    first = await stages(clients(w.manager.token), rid)
    assert [s.status for s in first] == ["InProgress", "NotStarted"], [(s.display_name, s.status) for s in first]
    assert first[0].assigned_to_me is True
    await decide(clients(w.manager.token), rid, first[0].id, "Approve", "Fine by me")
    second = await stages(clients(w.approver.token), rid)
    assert [s.status for s in second] == ["Completed", "InProgress"], [(s.display_name, s.status) for s in second]
    assert second[1].assigned_to_me is True and second[0].assigned_to_me is False
    await decide(clients(w.approver.token), rid, second[1].id, "Approve", None)


# ---------------------------------------------------------------------------------------------
# the stories
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Delivered:
    person: Person
    request_id: str
    assignment_id: str
    end: datetime.datetime


@pytest.fixture(scope="module")
def alice(world: World) -> Person:
    return run(lambda clients: new_person(clients(), "Alice", world.manager))


@pytest.fixture(scope="module")
def delivered() -> dict[str, Delivered]:
    """Filled by test_two_stage_approval_delivers for the stories that continue it."""
    return {}


def test_two_stage_approval_delivers(world: World, alice: Person, delivered: dict[str, Delivered]):
    w = world

    async def story(clients: Clients):
        me = clients(alice.token)
        em = em_of(me)
        t0 = now()

        # What alice sees before asking: the package is requestable, with the policy's requirements.
        requestable = (await em.access_packages.filter_by_current_user_with_on("allowedRequestor").get()).value
        assert w.package.id in {p.id for p in requestable}
        reqs = (await em.access_packages.by_access_package_id(w.package.id).get_applicable_policy_requirements.post()).value
        assert len(reqs) == 1
        assert reqs[0].policy_id == w.policy.id
        assert reqs[0].is_approval_required_for_add is True and reqs[0].is_requestor_justification_required is True
        assert reqs[0].allow_custom_assignment_schedule is True
        assert [q.id for q in reqs[0].questions] == [w.question_id]

        # Bad input answers 4xx and changes nothing.
        end = t0 + datetime.timedelta(days=20)
        await refused(em.assignment_requests.post(user_add(w, justification=None)), 400)
        await refused(em.assignment_requests.post(user_add(w, ticket="fin 42")), 400)
        await refused(em.assignment_requests.post(user_add(w, ticket=None)), 400)
        too_long = schedule(t0, t0 + datetime.timedelta(days=POLICY_DAYS + 5))
        e = await refused(em.assignment_requests.post(user_add(w, sched=too_long)), 400)
        assert "later than the policy allows" in e.error.message, e.error.message
        assert await my_requests(me) == []

        # The request: justification, an answer, a custom schedule.
        r = await submit(me, user_add(w, sched=schedule(t0, end)))
        assert r.id and r.request_type == AccessPackageRequestType.UserAdd
        assert r.state == AccessPackageRequestState.PendingApproval and r.status == "PendingApproval"
        assert r.justification == "Quarter close"
        assert isinstance(r.answers[0], AccessPackageAnswerString) and r.answers[0].value == "FIN-42"
        assert isinstance(r.answers[0].answered_question, AccessPackageTextInputQuestion)
        assert r.answers[0].answered_question.id == w.question_id
        assert r.schedule.start_date_time == t0 and r.schedule.expiration.end_date_time == end
        assert aware(r.created_date_time) == t0
        assert [x.id for x in await my_requests(me)] == [r.id]

        # The manager finds it among their approvals; the approvers group does not yet.
        mine = (await em_of(clients(w.manager.token)).access_package_assignment_approvals
                .filter_by_current_user_with_on("approver").get()).value
        assert r.id in {a.id for a in mine}
        assert (await em_of(clients(w.approver.token)).access_package_assignment_approvals
                .filter_by_current_user_with_on("approver").get()).value == []
        first = await stages(clients(w.manager.token), r.id)
        assert len(first) == 2 and first[0].status == "InProgress" and first[0].review_result == "NotReviewed"
        # GET approval carries its stages inline, as in Graph.
        approval = await em_of(clients(w.manager.token)).access_package_assignment_approvals.by_approval_id(r.id).get()
        assert approval.id == r.id
        assert [(s.id, s.status, s.assigned_to_me) for s in approval.stages or []] == [
            (first[0].id, "InProgress", True), (first[1].id, "NotStarted", False)], approval.stages

        # Decisions by a non-approver, by the requestor, or without the required justification: refused.
        await refused(decide(clients(w.stranger.token), r.id, first[0].id, "Approve", "me too"), 403, 404)
        await refused(decide(me, r.id, first[0].id, "Approve", "my own"), 403)
        await refused(decide(clients(w.manager.token), r.id, first[0].id, "Approve", None), 400)
        await refused(decide(clients(w.approver.token), r.id, first[1].id, "Approve", "too early"), 403, 404, 409)
        again = await stages(clients(w.manager.token), r.id)
        assert [(s.status, s.review_result) for s in again] == [("InProgress", "NotReviewed"), ("NotStarted", "NotReviewed")]

        await approve_both_stages(clients, w, r.id)

        # A second decision on a completed stage: 409, nothing changes.
        await refused(decide(clients(w.manager.token), r.id, first[0].id, "Deny", "changed my mind"), 409)
        done = await stages(clients(w.manager.token), r.id)
        assert [(s.status, s.review_result) for s in done] == [("Completed", "Approve"), ("Completed", "Approve")]
        assert done[0].justification == "Fine by me"
        assert done[0].reviewed_by is not None and done[0].reviewed_by.id == w.manager.id
        assert aware(done[0].reviewed_date_time) == t0

        drain()
        got = await get_request(me, r.id)
        assert got.state == AccessPackageRequestState.Delivered, (got.state, got.status)
        assert got.status == "Delivered"
        assert got.access_package.id == w.package.id
        assert got.requestor.object_id == alice.id
        assert got.assignment is not None and got.assignment.state == AccessPackageAssignmentState.Delivered
        assert got.assignment.schedule.expiration.end_date_time == end
        assert alice.id in await member_ids(clients(), w.tools_group)

        # The assignment, as the administrator and as alice see it.
        (a,) = await assignments_of(clients(), alice, w.package)
        assert a.id == got.assignment.id and a.state == AccessPackageAssignmentState.Delivered
        assert a.target.object_id == alice.id and a.access_package.id == w.package.id
        assert a.schedule.start_date_time == t0 and a.schedule.expiration.end_date_time == end
        own = (await em.assignments.filter_by_current_user_with_on("target").get()).value
        assert [x.id for x in own] == [a.id]

        # Cancelling a delivered request: 409, still delivered.
        await refused(em.assignment_requests.by_access_package_assignment_request_id(r.id).cancel.post(), 409)
        assert (await get_request(me, r.id)).state == AccessPackageRequestState.Delivered
        assert alice.id in await member_ids(clients(), w.tools_group)
        delivered["alice"] = Delivered(alice, r.id, a.id, end)

    run(story)


def test_denied_request(world: World):
    w = world

    async def story(clients: Clients):
        bob = await new_person(clients(), "Bob", w.manager)
        r = await submit(clients(bob.token), user_add(w, justification="Pipeline review", ticket="CRM-7"))
        assert r.state == AccessPackageRequestState.PendingApproval
        (first, _) = await stages(clients(w.manager.token), r.id)
        await decide(clients(w.manager.token), r.id, first.id, "Deny", "Not in your role")
        got = await get_request(clients(bob.token), r.id)
        assert got.state == AccessPackageRequestState.Denied and got.status == "Denied", (got.state, got.status)
        assert aware(got.completed_date_time)
        assert got.assignment is None
        st = await stages(clients(bob.token), r.id)
        assert [(s.status, s.review_result) for s in st] == [("Completed", "Deny"), ("Skipped", "NotReviewed")]
        assert st[0].justification == "Not in your role"
        drain()
        assert await assignments_of(clients(), bob, w.package) == []
        assert bob.id not in await member_ids(clients(), w.tools_group)
        # A decision after the end: 409.
        await refused(decide(clients(w.manager.token), r.id, first.id, "Approve", "sorry"), 409)

        # A pending request its requestor cancels: canceled, and the manager can no longer decide.
        cora = await new_person(clients(), "Cora", w.manager)
        r = await submit(clients(cora.token), user_add(w, justification="Trying it out", ticket="CRM-8"))
        await refused(em_of(clients(w.stranger.token)).assignment_requests
                      .by_access_package_assignment_request_id(r.id).cancel.post(), 403, 404)
        await em_of(clients(cora.token)).assignment_requests.by_access_package_assignment_request_id(r.id).cancel.post()
        got = await get_request(clients(cora.token), r.id)
        assert got.state == AccessPackageRequestState.Canceled and got.status == "Canceled", (got.state, got.status)
        (first, _) = await stages(clients(w.manager.token), r.id)
        await refused(decide(clients(w.manager.token), r.id, first.id, "Approve", "too late"), 409)
        drain()
        assert await assignments_of(clients(), cora, w.package) == []

    run(story)


def test_request_times_out(world: World):
    w = world

    async def story(clients: Clients):
        carol = await new_person(clients(), "Carol", w.manager)
        r = await submit(clients(carol.token), user_add(w, justification="Forecasting", ticket="OPS-3"))
        assert r.state == AccessPackageRequestState.PendingApproval
        advance(datetime.timedelta(days=STAGE_DAYS) - datetime.timedelta(hours=1))
        drain()
        assert (await get_request(clients(carol.token), r.id)).state == AccessPackageRequestState.PendingApproval
        advance(datetime.timedelta(days=1, hours=1))  # three days in all: past the stage's two
        drain()
        got = await get_request(clients(carol.token), r.id)
        assert got.state == AccessPackageRequestState.Denied, (got.state, got.status)
        assert got.status == "TimedOut"
        st = await stages(clients(carol.token), r.id)
        assert [s.status for s in st] == ["Expired", "Skipped"], [s.status for s in st]
        assert carol.id not in await member_ids(clients(), w.tools_group)
        # The manager can no longer decide.
        await refused(decide(clients(w.manager.token), r.id, st[0].id, "Approve", "late"), 409)

    run(story)


def test_extension_moves_the_end(world: World, delivered: dict[str, Delivered]):
    w = world
    d = delivered.get("alice")
    if d is None:
        pytest.fail("test_two_stage_approval_delivers did not deliver alice's access")

    async def story(clients: Clients):
        me = clients(d.person.token)
        t = now()
        new_end = t + datetime.timedelta(days=POLICY_DAYS - 2)
        assert new_end > d.end
        ext = AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserUpdate, justification="Another quarter",
            assignment=AccessPackageAssignment(id=d.assignment_id),
            schedule=EntitlementManagementSchedule(expiration=ExpirationPattern(
                type=ExpirationPatternType.AfterDateTime, end_date_time=new_end)))
        # Past what the policy allows: refused.
        too_far = AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserUpdate, justification="Forever",
            assignment=AccessPackageAssignment(id=d.assignment_id),
            schedule=EntitlementManagementSchedule(expiration=ExpirationPattern(
                type=ExpirationPatternType.AfterDateTime, end_date_time=t + datetime.timedelta(days=POLICY_DAYS + 1))))
        await refused(em_of(me).assignment_requests.post(too_far), 400)

        r = await submit(me, ext)
        assert r.request_type == AccessPackageRequestType.UserUpdate
        assert r.state == AccessPackageRequestState.PendingApproval, (r.state, r.status)
        # Until it is approved, the assignment keeps its end.
        (a,) = await assignments_of(clients(), d.person, w.package)
        assert a.schedule.expiration.end_date_time == d.end
        await approve_both_stages(clients, w, r.id)
        drain()
        got = await get_request(me, r.id)
        assert got.state == AccessPackageRequestState.Delivered, (got.state, got.status)
        (a,) = await assignments_of(clients(), d.person, w.package)
        assert a.id == d.assignment_id and a.state == AccessPackageAssignmentState.Delivered
        assert a.schedule.expiration.end_date_time == new_end, a.schedule.expiration.end_date_time
        assert d.person.id in await member_ids(clients(), w.tools_group)
        d.end = new_end

    run(story)


def test_self_removal(world: World, delivered: dict[str, Delivered]):
    w = world
    d = delivered.get("alice")
    if d is None:
        pytest.fail("test_two_stage_approval_delivers did not deliver alice's access")

    async def story(clients: Clients):
        me = clients(d.person.token)
        # Someone else's assignment cannot be removed by a user.
        await refused(em_of(clients(w.stranger.token)).assignment_requests.post(AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserRemove, assignment=AccessPackageAssignment(id=d.assignment_id))),
            403, 404)
        assert d.person.id in await member_ids(clients(), w.tools_group)

        r = await submit(me, AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserRemove, assignment=AccessPackageAssignment(id=d.assignment_id)))
        assert r.request_type == AccessPackageRequestType.UserRemove
        drain()
        got = await get_request(me, r.id)
        assert got.state == AccessPackageRequestState.Delivered, (got.state, got.status)
        (a,) = await assignments_of(clients(), d.person, w.package)
        assert a.id == d.assignment_id
        assert a.state == AccessPackageAssignmentState.Expired, (a.state, a.status)
        assert aware(a.expired_date_time) == now()
        assert d.person.id not in await member_ids(clients(), w.tools_group)
        # Removing it again: it has ended.
        await refused(em_of(me).assignment_requests.post(AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserRemove, assignment=AccessPackageAssignment(id=d.assignment_id))),
            409)

    run(story)


def test_admin_add_and_remove(world: World):
    w = world

    async def story(clients: Clients):
        c = clients()
        dave = await new_person(c, "Dave")
        r = await submit(c, admin_add(w.package, w.policy, dave))
        assert r.request_type == AccessPackageRequestType.AdminAdd
        assert r.state in (AccessPackageRequestState.Delivering, AccessPackageRequestState.Delivered), r.state
        drain()
        got = await get_request(c, r.id)
        assert got.state == AccessPackageRequestState.Delivered, (got.state, got.status)
        (a,) = await assignments_of(c, dave, w.package)
        assert a.state == AccessPackageAssignmentState.Delivered
        # No custom schedule: the policy's full length from now.
        t = now()
        assert a.schedule.start_date_time == t
        assert a.schedule.expiration.end_date_time == t + datetime.timedelta(days=POLICY_DAYS)
        assert dave.id in await member_ids(c, w.tools_group)
        # A second adminAdd for the same person and package: 409.
        await refused(em_of(c).assignment_requests.post(admin_add(w.package, w.policy, dave)), 409)

        removal = await submit(c, AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminRemove, assignment=AccessPackageAssignment(id=a.id)))
        assert removal.request_type == AccessPackageRequestType.AdminRemove
        drain()
        assert (await get_request(c, removal.id)).state == AccessPackageRequestState.Delivered
        (a,) = await assignments_of(c, dave, w.package)
        assert a.state == AccessPackageAssignmentState.Expired, (a.state, a.status)
        assert dave.id not in await member_ids(c, w.tools_group)

    run(story)


def test_scheduled_start(world: World):
    w = world

    async def story(clients: Clients):
        c = clients()
        erin = await new_person(c, "Erin")
        t = now()
        start, end = t + datetime.timedelta(days=2), t + datetime.timedelta(days=10)
        r = await submit(c, admin_add(w.package, w.policy, erin, schedule(start, end)))
        assert r.state == AccessPackageRequestState.Scheduled, (r.state, r.status)
        assert r.schedule.start_date_time == start and r.schedule.expiration.end_date_time == end
        drain()
        assert (await get_request(c, r.id)).state == AccessPackageRequestState.Scheduled
        assert await assignments_of(c, erin, w.package) == []
        advance(datetime.timedelta(days=1, hours=23))
        drain()
        assert (await get_request(c, r.id)).state == AccessPackageRequestState.Scheduled
        assert erin.id not in await member_ids(c, w.tools_group)
        advance(datetime.timedelta(hours=2))  # past the start
        drain()
        got = await get_request(c, r.id)
        assert got.state == AccessPackageRequestState.Delivered, (got.state, got.status)
        (a,) = await assignments_of(c, erin, w.package)
        assert a.state == AccessPackageAssignmentState.Delivered
        assert a.schedule.start_date_time == start and a.schedule.expiration.end_date_time == end
        assert erin.id in await member_ids(c, w.tools_group)

    run(story)


def test_expiry(world: World):
    w = world

    async def story(clients: Clients):
        c = clients()
        frank = await new_person(c, "Frank")
        t = now()
        end = t + datetime.timedelta(days=1)
        await submit(c, admin_add(w.package, w.policy, frank, schedule(None, end)))
        drain()
        (a,) = await assignments_of(c, frank, w.package)
        assert a.state == AccessPackageAssignmentState.Delivered
        assert a.schedule.expiration.end_date_time == end
        assert frank.id in await member_ids(c, w.tools_group)
        advance(datetime.timedelta(hours=23))
        drain()
        (a,) = await assignments_of(c, frank, w.package)
        assert a.state == AccessPackageAssignmentState.Delivered
        advance(datetime.timedelta(hours=2))  # past the end
        drain()
        (a,) = await assignments_of(c, frank, w.package)
        assert a.state == AccessPackageAssignmentState.Expired, (a.state, a.status)
        assert a.status == "Expired"
        assert end <= aware(a.expired_date_time) <= now()
        assert frank.id not in await member_ids(c, w.tools_group)

    run(story)


def test_automatic_assignment_follows_department(world: World):
    w = world

    async def story(clients: Clients):
        c = clients()
        gina = await new_person(c, "Gina", department="Engineering")
        drain()
        assert await assignments_of(c, gina, w.auto_package) == []

        await c.users.by_user_id(gina.id).patch(User(department="Sales"))
        drain()
        (a,) = await assignments_of(c, gina, w.auto_package)
        assert a.state == AccessPackageAssignmentState.Delivered, (a.state, a.status)
        assert gina.id in await member_ids(c, w.auto_group)
        # Other runs against the same database may have left automatic policies for "Sales" too.
        system = [r for r in await my_requests(clients(gina.token), w.auto_package)
                  if r.request_type == AccessPackageRequestType.SystemAdd]
        assert len(system) == 1 and system[0].state == AccessPackageRequestState.Delivered

        await c.users.by_user_id(gina.id).patch(User(department="Marketing"))
        drain()
        (a,) = await assignments_of(c, gina, w.auto_package)
        assert a.state == AccessPackageAssignmentState.Expired, (a.state, a.status)
        assert gina.id not in await member_ids(c, w.auto_group)
        removals = [r for r in await my_requests(clients(gina.token), w.auto_package)
                    if r.request_type == AccessPackageRequestType.SystemRemove]
        assert len(removals) == 1 and removals[0].state == AccessPackageRequestState.Delivered

    run(story)


def test_separation_of_duties(world: World):
    w = world

    async def story(clients: Clients):
        c = clients()
        em = em_of(c)
        henry = await new_person(c, "Henry")
        await submit(c, admin_add(w.package, w.policy, henry))
        drain()
        (held,) = await assignments_of(c, henry, w.package)
        assert held.state == AccessPackageAssignmentState.Delivered

        payments = await em.access_packages.post(AccessPackage(
            display_name=f"{RUN} Payments approval", description="must not be combined with Sales tools",
            catalog=AccessPackageCatalog(id=w.catalog_id)))
        payments_policy = await em.assignment_policies.post(AccessPackageAssignmentPolicy(
            display_name="Anyone, no approval", access_package=AccessPackage(id=payments.id),
            allowed_target_scope=AllowedTargetScope.AllMemberUsers,
            requestor_settings=AccessPackageAssignmentRequestorSettings(enable_targets_to_self_add_access=True)))
        await em.access_packages.by_access_package_id(payments.id).incompatible_access_packages.ref.post(
            ReferenceCreate(odata_id=f"{BASE}/identityGovernance/entitlementManagement/accessPackages/{w.package.id}"))

        e = await refused(em_of(clients(henry.token)).assignment_requests.post(AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserAdd, justification="I pay the bills",
            assignment=AccessPackageAssignment(access_package=AccessPackage(id=payments.id),
                                               assignment_policy=AccessPackageAssignmentPolicy(id=payments_policy.id)))))
        assert w.package.display_name in e.error.message, e.error.message
        # The administrator is refused the same way.
        e = await refused(em.assignment_requests.post(admin_add(payments, payments_policy, henry)))
        assert w.package.display_name in e.error.message, e.error.message
        assert await assignments_of(c, henry, payments) == []
        qp = AssignmentRequestsRequestBuilder.AssignmentRequestsRequestBuilderGetQueryParameters(
            filter=f"accessPackage/id eq '{payments.id}'", count=True)
        left = await em.assignment_requests.get(request_configuration=RequestConfiguration(query_parameters=qp))
        assert left.odata_count == 0 and left.value == [], "a refused request leaves nothing behind"

        # Someone without Sales tools may have it, and additionalAccess (the SDK drops the comma
        # between its two parameters) then lists nobody holding both.
        ivy = await new_person(c, "Ivy")
        r = await submit(clients(ivy.token), AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserAdd,
            assignment=AccessPackageAssignment(access_package=AccessPackage(id=payments.id))))
        drain()
        assert (await get_request(clients(ivy.token), r.id)).state == AccessPackageRequestState.Delivered
        both = await em.assignments.additional_access_with_access_package_id_with_incompatible_access_package_id(
            payments.id, w.package.id).get()
        assert both.value == []

    run(story)
