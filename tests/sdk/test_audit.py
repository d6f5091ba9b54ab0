"""The audit trail through Microsoft's Graph SDK for Python (`/auditLogs/directoryAudits`):
after a whole request lifecycle (a person requests a package with their own token, a named
approver approves, the worker delivers), an administrator reads the request's events with the
SDK's typed builders, by correlation id, by target, by initiator, by activity and time, a page
of two at a time through @odata.nextLink, and finds every step with its initiator (the
requestor and the approver as users with their address, Steward's own steps as an application)
and its targets (the request, its package and its target user). Anyone else is refused.

Configuration: as every SDK story (tests/sdk/run.sh sets it; see sdk_support).
"""
from __future__ import annotations

import datetime
import uuid

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import DirectoryAuditsRequestBuilder
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_approval_stage import AccessPackageApprovalStage
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_approval_settings import AccessPackageAssignmentApprovalSettings
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_assignment_requestor_settings import AccessPackageAssignmentRequestorSettings
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
from msgraph.generated.models.approval_stage import ApprovalStage
from msgraph.generated.models.directory_audit import DirectoryAudit
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.operation_result import OperationResult
from msgraph.generated.models.single_user import SingleUser

from sdk_support import Clients, Naming, drain, em_of, now, refused, run, submit

RUN = f"Audit{uuid.uuid4().hex[:8]}"
_names = Naming(RUN)

REQUESTED = "User requests access package assignment"
APPROVED = "Approve access package assignment request"
FULFILLED = "Fulfill access package assignment request"
REQUEST_TYPE = "AccessPackageAssignmentRequest"


async def audits(c, flt: str, top: int = 2, orderby: str = "activityDateTime") -> list[DirectoryAudit]:
    """Every audit record `flt` selects, read `top` at a time through @odata.nextLink."""
    qp = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
        filter=flt, top=top, orderby=[orderby], count=True)
    page = await c.audit_logs.directory_audits.get(request_configuration=RequestConfiguration(query_parameters=qp))
    total = page.odata_count
    got = list(page.value)
    pages = 1
    while page.odata_next_link:
        assert len(page.value) == top, "only the last page is short"
        page = await c.audit_logs.directory_audits.with_url(page.odata_next_link).get()
        got.extend(page.value)
        pages += 1
    assert total == len(got), (total, len(got))
    assert pages == max(1, -(-len(got) // top)), (pages, len(got))
    assert len({a.id for a in got}) == len(got), "a record was read twice"
    return got


def test_a_request_lifecycle_reads_back_from_the_audit_trail():
    async def story(clients: Clients) -> None:
        c = clients()
        em = em_of(c)
        started = now().strftime("%Y-%m-%dT%H:%M:%SZ")
        catalog = await em.catalogs.post(AccessPackageCatalog(display_name=f"{RUN} audited"))
        group = await _names.new_group(c, "Audited Tools")
        package = await _names.package_granting(c, catalog.id, group, "Audited tools")
        ann = await _names.new_person(c, "Ann")
        pat = await _names.new_person(c, "Pat")
        policy = await em.assignment_policies.post(AccessPackageAssignmentPolicy(
            display_name="Pat approves", description="one stage, a named approver",
            access_package=AccessPackage(id=package.id),
            allowed_target_scope=AllowedTargetScope.AllMemberUsers,
            expiration=ExpirationPattern(type=ExpirationPatternType.AfterDuration, duration=datetime.timedelta(days=30)),
            requestor_settings=AccessPackageAssignmentRequestorSettings(enable_targets_to_self_add_access=True),
            request_approval_settings=AccessPackageAssignmentApprovalSettings(
                is_approval_required_for_add=True, is_requestor_justification_required=True,
                stages=[AccessPackageApprovalStage(duration_before_automatic_denial=datetime.timedelta(days=7),
                                                   is_approver_justification_required=False, is_escalation_enabled=False,
                                                   primary_approvers=[SingleUser(user_id=pat.id, description="Pat")])])))

        # The lifecycle: Ann asks, Pat approves, the worker delivers.
        request = await submit(clients(ann.token), AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserAdd, justification="Audit season",
            assignment=AccessPackageAssignment(access_package=AccessPackage(id=package.id),
                                               assignment_policy=AccessPackageAssignmentPolicy(id=policy.id))))
        rid = request.id
        approval = em_of(clients(pat.token)).access_package_assignment_approvals.by_approval_id(rid)
        stage = (await approval.stages.get()).value[0]
        await approval.stages.by_approval_stage_id(stage.id).patch(ApprovalStage(review_result="Approve",
                                                                                 justification="Fine"))
        drain()

        # Everything about the request, oldest first, two to a page.
        trail = await audits(c, f"correlationId eq '{rid}'")
        names = [a.activity_display_name for a in trail]
        for step in (REQUESTED, APPROVED, FULFILLED):
            assert step in names, (step, names)
        assert names.index(REQUESTED) < names.index(APPROVED) < names.index(FULFILLED), names
        assert [a.activity_date_time for a in trail] == sorted(a.activity_date_time for a in trail)
        for a in trail:
            assert a.correlation_id == rid and a.category == "EntitlementManagement", a
            assert a.result == OperationResult.Success and a.logged_by_service == "Entitlement Management", a
            target = a.target_resources[0]
            # The request's own steps target it; its delivery's, the assignment it made.
            assert target.type in (REQUEST_TYPE, "AccessPackageAssignment"), target
            assert target.id == rid or target.type == "AccessPackageAssignment", target
            others = {(t.type, t.id) for t in a.target_resources[1:]}
            assert ("AccessPackage", package.id) in others and ("User", ann.id) in others, others
            user_target = next(t for t in a.target_resources if t.type == "User")
            assert user_target.display_name == ann.name, user_target

        def by(name: str) -> DirectoryAudit:
            return next(a for a in trail if a.activity_display_name == name)

        asked, decided, fulfilled = by(REQUESTED), by(APPROVED), by(FULFILLED)
        assert asked.initiated_by.user.id == ann.id and asked.initiated_by.user.display_name == ann.name
        assert asked.initiated_by.user.ip_address == "127.0.0.1", asked.initiated_by.user
        assert asked.initiated_by.app is None
        assert decided.initiated_by.user.id == pat.id and decided.initiated_by.user.display_name == pat.name
        assert fulfilled.initiated_by.user is None and fulfilled.initiated_by.app.display_name == "Steward"

        # The same records by target (the record's own, the first of its targets), by initiator,
        # by activity and time; one by id.
        by_target = await audits(c, f"targetResources/any(t: t/id eq '{rid}')", top=3)
        assert {a.id for a in by_target} == {a.id for a in trail if a.target_resources[0].id == rid}
        assert {REQUESTED, APPROVED} <= {a.activity_display_name for a in by_target}
        anns = await audits(c, f"initiatedBy/user/id eq '{ann.id}' and activityDateTime ge {started}")
        assert [a.activity_display_name for a in anns] == [REQUESTED], [a.activity_display_name for a in anns]
        pats = await audits(c, f"activityDisplayName eq '{APPROVED}' and correlationId eq '{rid}'")
        assert [a.id for a in pats] == [decided.id]
        starts = await audits(c, f"startswith(activityDisplayName, 'user requests') and correlationId eq '{rid}'")
        assert [a.id for a in starts] == [asked.id]
        newest_first = await audits(c, f"correlationId eq '{rid}'", top=50, orderby="activityDateTime desc")
        assert [a.id for a in newest_first] == [a.id for a in reversed(trail)]
        one = await c.audit_logs.directory_audits.by_directory_audit_id(decided.id).get()
        assert one.activity_display_name == APPROVED and one.initiated_by.user.id == pat.id

        # The policy's creation carries its values: who made it and what it says.
        made = await audits(c, f"targetResources/any(t: t/id eq '{policy.id}')")
        assert [a.activity_display_name for a in made] == ["Create access package assignment policy"], made
        assert made[0].initiated_by.app is not None

        # Only administrators read the trail; a bad filter is a 400.
        await refused(clients(ann.token).audit_logs.directory_audits.get(), 403)
        qp = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(filter="colour eq 'red'")
        await refused(c.audit_logs.directory_audits.get(request_configuration=RequestConfiguration(query_parameters=qp)), 400)

    run(story)
