"""Microsoft's Graph SDK for Python (msgraph-sdk, pinned in requirements.txt) driving a running
`steward serve`, exactly as a Graph user would: typed models and request builders, with only the
adapter's base URL changed (graph-api.md §6.1). No raw HTTP anywhere: every call below has an SDK
builder.

Configuration (tests/sdk/run.sh sets both):
  STEWARD_BASE_URL  e.g. http://127.0.0.1:18080/v1.0
  STEWARD_TOKEN     bearer token of a global administrator

Every name carries a per-run uuid4 fragment, so the module can run again against the same database.
The stories share one catalog (the `scenario` fixture) and run in file order:
  1. test_catalog_resources_packages_roundtrip  groups, catalog, resource request, package, role scope
  2. test_paging_and_queries                    260 more packages; PageIterator, $filter/$orderby/$count/$select
  3. test_incompatibility                       incompatibleAccessPackages / incompatibleGroups via $ref
  4. test_update_and_delete                     PATCH, refused and successful deletes (cleans up the catalog)
  5. test_unknown_id_is_a_graph_404             error shape
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import uuid
from typing import Any, Awaitable, Callable, TypeVar

import pytest
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.entitlement_management.access_packages.access_packages_request_builder import (
    AccessPackagesRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.access_packages.count.count_request_builder import (
    CountRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.access_packages.item.access_package_item_request_builder import (
    AccessPackageItemRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.catalogs.item.resource_roles.resource_roles_request_builder import (
    ResourceRolesRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.catalogs.item.resources.resources_request_builder import (
    ResourcesRequestBuilder,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_catalog_state import AccessPackageCatalogState
from msgraph.generated.models.access_package_catalog_type import AccessPackageCatalogType
from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.access_package_resource import AccessPackageResource
from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
from msgraph.generated.models.access_package_resource_role import AccessPackageResourceRole
from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
from msgraph.generated.models.access_package_resource_scope import AccessPackageResourceScope
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core.tasks.page_iterator import PageIterator

BASE = os.environ.get("STEWARD_BASE_URL", "").rstrip("/")
TOKEN = os.environ.get("STEWARD_TOKEN", "")
EM_PATH = "/identityGovernance/entitlementManagement"
# Per-run prefix. The upper-case "Sdk" makes the tolower() filter below meaningful; everything
# after it is lower-case ASCII so that displayName order is the same in every database collation.
RUN = f"Sdk{uuid.uuid4().hex[:8]}"
EXTRA_PACKAGES = 260  # created by test_paging_and_queries next to the scenario's package

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# client and small helpers
# ---------------------------------------------------------------------------------------------

class StaticTokenProvider(AccessTokenProvider):
    def __init__(self, token: str):
        self._token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])  # empty = any host


def make_client() -> GraphServiceClient:
    if not BASE or not TOKEN:
        pytest.fail("STEWARD_BASE_URL and STEWARD_TOKEN must be set (tests/sdk/run.sh sets them)")
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticTokenProvider(TOKEN)))
    adapter.base_url = BASE  # before GraphServiceClient(), which only sets it when empty
    return GraphServiceClient(request_adapter=adapter)


def run(story: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    """Runs `await story(client)` on a fresh event loop with a fresh client."""
    async def main() -> T:
        client = make_client()
        try:
            return await story(client)
        finally:
            # The adapter owns an httpx.AsyncClient; close it before asyncio.run() closes the loop.
            http = getattr(client.request_adapter, "_http_client", None)
            if http is not None:
                await http.aclose()
    return asyncio.run(main())


def em_of(client: GraphServiceClient):
    return client.identity_governance.entitlement_management


def config(query_parameters: Any) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=query_parameters)


def is_aware(value: Any) -> bool:
    return isinstance(value, datetime.datetime) and value.tzinfo is not None and value.utcoffset() is not None


async def collect_all(client: GraphServiceClient, first_page: Any) -> list[Any]:
    """Every item of a collection, following @odata.nextLink with the SDK's PageIterator."""
    items: list[Any] = []

    def keep(item: Any) -> bool:
        items.append(item)
        return True

    if first_page.value:
        # error_mapping: so that a failing next page raises ODataError, like the first page does
        await PageIterator(first_page, client.request_adapter, error_mapping={"XXX": ODataError}).iterate(keep)
    return items


async def list_packages(client: GraphServiceClient, **query: Any) -> list[AccessPackage]:
    """GET accessPackages with the given query options, all pages."""
    qp = AccessPackagesRequestBuilder.AccessPackagesRequestBuilderGetQueryParameters(**query)
    return await collect_all(client, await em_of(client).access_packages.get(request_configuration=config(qp)))


async def new_group(client: GraphServiceClient, name: str, nickname: str) -> Group:
    return await client.groups.post(Group(display_name=name, description=f"{name} (SDK conformance test)",
                                          mail_nickname=nickname, security_enabled=True, mail_enabled=False))


async def new_package(client: GraphServiceClient, name: str, catalog_id: str, description: str) -> AccessPackage:
    return await em_of(client).access_packages.post(AccessPackage(
        display_name=name, description=description, is_hidden=False, catalog=AccessPackageCatalog(id=catalog_id)))


def package_url(package_id: str) -> str:
    return f"{BASE}{EM_PATH}/accessPackages/{package_id}"


# ---------------------------------------------------------------------------------------------
# the shared scenario: story 1's writes (test_catalog_resources_packages_roundtrip checks them)
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Scenario:
    group: Group  # added to the catalog as a resource
    group2: Group  # used as an incompatible group
    catalog: AccessPackageCatalog  # as returned by POST
    resource_request: AccessPackageResourceRequest  # the adminAdd of `group`, as returned by POST
    resource_id: str
    package: AccessPackage  # as returned by POST
    role_scope: AccessPackageResourceRoleScope  # Member of `group` in `package`, as returned by POST


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    async def story(c: GraphServiceClient) -> Scenario:
        em = em_of(c)
        group = await new_group(c, f"{RUN} Sales", f"{RUN.lower()}-sales")
        group2 = await new_group(c, f"{RUN} Auditors", f"{RUN.lower()}-auditors")
        catalog = await em.catalogs.post(AccessPackageCatalog(
            display_name=f"{RUN} catalog", description="SDK conformance catalog",
            is_externally_visible=False, state=AccessPackageCatalogState.Published))
        request = await em.resource_requests.post(AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            resource=AccessPackageResource(origin_id=group.id, origin_system="AadGroup"),
            catalog=AccessPackageCatalog(id=catalog.id)))
        resources = (await em.catalogs.by_access_package_catalog_id(catalog.id).resources.get()).value
        assert resources and len(resources) == 1, f"the catalog should hold exactly the added group: {resources}"
        package = await new_package(c, f"{RUN}-sales-toolkit", catalog.id, "CRM and pipeline tools")
        role_scope = await em.access_packages.by_access_package_id(package.id).resource_role_scopes.post(
            AccessPackageResourceRoleScope(
                role=AccessPackageResourceRole(origin_id=f"Member_{group.id}", origin_system="AadGroup",
                                               resource=AccessPackageResource(id=resources[0].id)),
                scope=AccessPackageResourceScope(origin_id=group.id, origin_system="AadGroup")))
        return Scenario(group, group2, catalog, request, resources[0].id, package, role_scope)

    return run(story)


# ---------------------------------------------------------------------------------------------
# stories
# ---------------------------------------------------------------------------------------------

def test_catalog_resources_packages_roundtrip(scenario: Scenario):
    s = scenario

    # groups: the POST answers with what was sent
    for group, name, nickname in ((s.group, f"{RUN} Sales", f"{RUN.lower()}-sales"),
                                  (s.group2, f"{RUN} Auditors", f"{RUN.lower()}-auditors")):
        assert group.id
        assert group.display_name == name
        assert group.description == f"{name} (SDK conformance test)"
        assert group.mail_nickname == nickname
        assert group.security_enabled is True
        assert group.mail_enabled is False
    assert s.group.id != s.group2.id

    # resource request
    assert s.resource_request.id
    assert s.resource_request.state == AccessPackageRequestState.Delivered
    assert s.resource_request.request_type == AccessPackageRequestType.AdminAdd

    async def story(c: GraphServiceClient):
        em = em_of(c)
        cat = em.catalogs.by_access_package_catalog_id(s.catalog.id)

        # catalog: every property round-trips
        got = await cat.get()
        assert got.id == s.catalog.id
        assert got.display_name == f"{RUN} catalog"
        assert got.description == "SDK conformance catalog"
        assert got.is_externally_visible is False
        assert got.state == AccessPackageCatalogState.Published
        assert got.catalog_type == AccessPackageCatalogType.UserManaged  # the default
        assert is_aware(got.created_date_time), got.created_date_time
        assert is_aware(got.modified_date_time), got.modified_date_time

        # catalog resources with roles and scopes
        resources = (await cat.resources.get(request_configuration=config(
            ResourcesRequestBuilder.ResourcesRequestBuilderGetQueryParameters(expand=["roles", "scopes"])))).value
        assert len(resources) == 1
        r = resources[0]
        assert r.id == s.resource_id
        assert r.origin_id == s.group.id
        assert r.origin_system == "AadGroup"
        assert r.display_name == s.group.display_name
        assert r.roles is not None and r.scopes is not None, "$expand=roles,scopes must inline both"
        assert sorted(x.display_name for x in r.roles) == ["Member", "Owner"]
        assert {x.display_name: x.origin_id for x in r.roles} == {"Member": f"Member_{s.group.id}",
                                                                   "Owner": f"Owner_{s.group.id}"}
        assert len(r.scopes) == 1
        assert r.scopes[0].is_root_scope is True
        assert r.scopes[0].origin_id == s.group.id

        # catalog resource roles, filtered on a navigation property
        roles = (await cat.resource_roles.get(request_configuration=config(
            ResourceRolesRequestBuilder.ResourceRolesRequestBuilderGetQueryParameters(
                filter=f"originSystem eq 'AadGroup' and resource/id eq '{r.id}'")))).value
        assert sorted((x.display_name, x.origin_id, x.origin_system) for x in roles) == [
            ("Member", f"Member_{s.group.id}", "AadGroup"), ("Owner", f"Owner_{s.group.id}", "AadGroup")]

        # access package: POST answer and GET agree with what was sent
        for p in (s.package, await em.access_packages.by_access_package_id(s.package.id).get()):
            assert p.id == s.package.id
            assert p.display_name == f"{RUN}-sales-toolkit"
            assert p.description == "CRM and pipeline tools"
            assert p.is_hidden is False
            assert is_aware(p.created_date_time) and is_aware(p.modified_date_time)

        # the role scope, nested under the package with its role, scope and catalog
        assert s.role_scope.id
        full = await em.access_packages.by_access_package_id(s.package.id).get(request_configuration=config(
            AccessPackageItemRequestBuilder.AccessPackageItemRequestBuilderGetQueryParameters(
                expand=["resourceRoleScopes($expand=role,scope)", "catalog"])))
        assert full.catalog is not None
        assert full.catalog.id == s.catalog.id
        assert full.catalog.display_name == f"{RUN} catalog"
        assert full.resource_role_scopes is not None and len(full.resource_role_scopes) == 1
        rrs = full.resource_role_scopes[0]
        assert rrs.id == s.role_scope.id
        assert rrs.role.display_name == "Member"
        assert rrs.role.origin_id == f"Member_{s.group.id}"
        assert rrs.role.origin_system == "AadGroup"
        assert rrs.scope.origin_id == s.group.id
        assert rrs.scope.origin_system == "AadGroup"
        assert rrs.scope.is_root_scope is True

    run(story)


def test_paging_and_queries(scenario: Scenario):
    cid = scenario.catalog.id

    async def story(c: GraphServiceClient):
        em = em_of(c)
        created = {scenario.package.id: scenario.package.display_name}
        for i in range(EXTRA_PACKAGES):
            p = await new_package(c, f"{RUN}-pkg-{i:03}", cid, f"package {i}")
            created[p.id] = p.display_name
        assert len(created) == EXTRA_PACKAGES + 1

        # server-driven paging over the catalog's packages
        first = await em.access_packages.get(request_configuration=config(
            AccessPackagesRequestBuilder.AccessPackagesRequestBuilderGetQueryParameters(
                filter=f"catalog/id eq '{cid}'", top=100, count=True, orderby=["displayName"],
                select=["id", "displayName"])))
        assert first.odata_count == EXTRA_PACKAGES + 1
        assert len(first.value) == 100
        assert first.odata_next_link and first.odata_next_link.startswith(f"{BASE}/"), first.odata_next_link
        seen = await collect_all(c, first)
        ids = [x.id for x in seen]
        assert len(ids) == len(set(ids)), "an item was returned twice"
        assert set(ids) == set(created)
        names = [x.display_name for x in seen]
        assert names == sorted(names), "not in displayName order"
        assert all(x.display_name == created[x.id] for x in seen)
        unselected = [x.id for x in seen if x.description is not None or x.is_hidden is not None
                      or x.created_date_time is not None]
        assert not unselected, f"$select=id,displayName returned other properties for {unselected[:5]}"

        # $filter functions and operators
        assert sorted(x.display_name for x in await list_packages(
            c, filter=f"startswith(displayName,'{RUN}-pkg-00')")) == [f"{RUN}-pkg-00{i}" for i in range(10)]
        assert sorted(x.display_name for x in await list_packages(
            c, filter=f"contains(tolower(displayName),'{RUN.lower()}-pkg-25')")) == [f"{RUN}-pkg-25{i}" for i in range(10)]
        combo = await list_packages(
            c, orderby=["displayName"],
            filter=f"catalog/id eq '{cid}' and (startswith(displayName,'{RUN}-pkg-00') or displayName eq '{RUN}-pkg-100')"
                   f" and not (displayName eq '{RUN}-pkg-003' or displayName eq '{RUN}-pkg-004')")
        assert [x.display_name for x in combo] == [f"{RUN}-pkg-{i:03}" for i in (0, 1, 2, 5, 6, 7, 8, 9, 100)]

        # $orderby desc
        desc = await list_packages(c, filter=f"catalog/id eq '{cid}'", orderby=["displayName desc"], select=["displayName"])
        assert [x.display_name for x in desc] == sorted(created.values(), reverse=True)

        # the /$count segment (text/plain integer)
        count = em.access_packages.count
        assert await count.get(request_configuration=config(CountRequestBuilder.CountRequestBuilderGetQueryParameters(
            filter=f"startswith(displayName,'{RUN}-pkg-1')"))) == 100
        assert await count.get(request_configuration=config(CountRequestBuilder.CountRequestBuilderGetQueryParameters(
            filter=f"catalog/id eq '{cid}'"))) == EXTRA_PACKAGES + 1

    run(story)


def test_incompatibility(scenario: Scenario):
    cid = scenario.catalog.id
    gid2 = scenario.group2.id

    async def story(c: GraphServiceClient):
        em = em_of(c)
        a = await new_package(c, f"{RUN}-sod-a", cid, "incompatible with B")
        b = await new_package(c, f"{RUN}-sod-b", cid, "B")
        pa = em.access_packages.by_access_package_id(a.id)
        pb = em.access_packages.by_access_package_id(b.id)

        # incompatibleAccessPackages: POST $ref on A, visible from both sides, DELETE $ref
        await pa.incompatible_access_packages.ref.post(ReferenceCreate(odata_id=package_url(b.id)))
        assert [x.id for x in (await pa.incompatible_access_packages.get()).value] == [b.id]
        assert [x.id for x in (await pb.access_packages_incompatible_with.get()).value] == [a.id]
        assert (await pb.incompatible_access_packages.get()).value == [], "incompatibility is unidirectional"

        await pa.incompatible_access_packages.by_access_package_id1(b.id).ref.delete()
        assert (await pa.incompatible_access_packages.get()).value == []
        assert (await pb.access_packages_incompatible_with.get()).value == []

        # incompatibleGroups
        await pa.incompatible_groups.ref.post(ReferenceCreate(odata_id=f"{BASE}/groups/{gid2}"))
        groups = (await pa.incompatible_groups.get()).value
        assert [x.id for x in groups] == [gid2]
        assert groups[0].display_name == scenario.group2.display_name

        await pa.incompatible_groups.by_group_id(gid2).ref.delete()
        assert (await pa.incompatible_groups.get()).value == []

    run(story)


def test_update_and_delete(scenario: Scenario):
    s = scenario

    async def story(c: GraphServiceClient):
        em = em_of(c)
        package = em.access_packages.by_access_package_id(s.package.id)
        catalog = em.catalogs.by_access_package_catalog_id(s.catalog.id)

        # PATCH merges: unsent properties keep their values
        await package.patch(AccessPackage(description="updated by the SDK test", is_hidden=True))
        got = await package.get()
        assert got.description == "updated by the SDK test"
        assert got.is_hidden is True
        assert got.display_name == f"{RUN}-sales-toolkit"
        assert got.modified_date_time >= s.package.modified_date_time

        await catalog.patch(AccessPackageCatalog(display_name=f"{RUN} catalog renamed",
                                                 state=AccessPackageCatalogState.Unpublished))
        got = await catalog.get()
        assert got.display_name == f"{RUN} catalog renamed"
        assert got.state == AccessPackageCatalogState.Unpublished
        assert got.description == "SDK conformance catalog"
        assert got.is_externally_visible is False

        # a catalog that still holds packages cannot be deleted
        with pytest.raises(ODataError) as refused:
            await catalog.delete()
        assert 400 <= refused.value.response_status_code <= 499, refused.value.response_status_code
        assert refused.value.error is not None and refused.value.error.code
        assert (await catalog.get()).id == s.catalog.id

        # empty the catalog: role scope, packages (including the other stories'), resource
        await package.resource_role_scopes.by_access_package_resource_role_scope_id(s.role_scope.id).delete()
        assert (await package.resource_role_scopes.get()).value == []
        for p in await list_packages(c, filter=f"catalog/id eq '{s.catalog.id}'", select=["id"]):
            await em.access_packages.by_access_package_id(p.id).delete()
        assert await list_packages(c, filter=f"catalog/id eq '{s.catalog.id}'") == []

        removed = await em.resource_requests.post(AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminRemove, resource=AccessPackageResource(id=s.resource_id),
            catalog=AccessPackageCatalog(id=s.catalog.id)))
        assert removed.request_type == AccessPackageRequestType.AdminRemove
        assert removed.state == AccessPackageRequestState.Delivered
        assert (await catalog.resources.get()).value == []

        # now it can go
        await catalog.delete()
        with pytest.raises(ODataError) as gone:
            await catalog.get()
        assert gone.value.response_status_code == 404

    run(story)


def test_unknown_id_is_a_graph_404():
    async def story(c: GraphServiceClient):
        with pytest.raises(ODataError) as e:
            await em_of(c).access_packages.by_access_package_id(str(uuid.uuid4())).get()
        assert e.value.response_status_code == 404
        assert e.value.error is not None and e.value.error.code
        assert e.value.error.inner_error is not None and e.value.error.inner_error.request_id

    run(story)


def test_assignment_policy_post_put_patch_delete():
    """The policy of the reference's tested recipe (§6.1): two approval stages, a question,
    durations as Python timedeltas; then PUT (replace), PATCH (merge) and DELETE."""
    from msgraph.generated.models.access_package_approval_stage import AccessPackageApprovalStage
    from msgraph.generated.models.access_package_assignment_approval_settings import AccessPackageAssignmentApprovalSettings
    from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
    from msgraph.generated.models.access_package_assignment_requestor_settings import AccessPackageAssignmentRequestorSettings
    from msgraph.generated.models.access_package_text_input_question import AccessPackageTextInputQuestion
    from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
    from msgraph.generated.models.expiration_pattern import ExpirationPattern
    from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
    from msgraph.generated.models.group_members import GroupMembers
    from msgraph.generated.models.requestor_manager import RequestorManager
    from msgraph.generated.models.single_user import SingleUser

    async def story(c: GraphServiceClient):
        em = em_of(c)
        catalog = await em.catalogs.post(AccessPackageCatalog(display_name=f"{RUN} policies"))
        package = await new_package(c, f"{RUN}-policy-package", catalog.id, "has a policy")
        group = await new_group(c, f"{RUN} Requestors", f"{RUN.lower()}-requestors")
        policy = await em.assignment_policies.post(AccessPackageAssignmentPolicy(
            display_name="Employees self-service", description="two-stage",
            allowed_target_scope=AllowedTargetScope.SpecificDirectoryUsers,
            specific_allowed_targets=[GroupMembers(group_id=group.id, description="Requestors")],
            access_package=AccessPackage(id=package.id),
            expiration=ExpirationPattern(type=ExpirationPatternType.AfterDuration, duration=datetime.timedelta(days=30)),
            requestor_settings=AccessPackageAssignmentRequestorSettings(
                enable_targets_to_self_add_access=True, enable_targets_to_self_update_access=True,
                enable_targets_to_self_remove_access=True, allow_custom_assignment_schedule=True),
            request_approval_settings=AccessPackageAssignmentApprovalSettings(
                is_approval_required_for_add=True, is_approval_required_for_update=True, is_requestor_justification_required=True,
                stages=[
                    AccessPackageApprovalStage(duration_before_automatic_denial=datetime.timedelta(days=14),
                                               is_approver_justification_required=True, is_escalation_enabled=False,
                                               primary_approvers=[RequestorManager(manager_level=1)],
                                               fallback_primary_approvers=[SingleUser(user_id=group.id)]),
                    AccessPackageApprovalStage(duration_before_automatic_denial=datetime.timedelta(days=14),
                                               primary_approvers=[GroupMembers(group_id=group.id)]),
                ]),
            questions=[AccessPackageTextInputQuestion(text="Why?", is_required=True, is_single_line_question=True, sequence=1)]))
        assert policy.id and policy.display_name == "Employees self-service" and policy.description == "two-stage"
        assert policy.allowed_target_scope == AllowedTargetScope.SpecificDirectoryUsers
        assert policy.expiration.type == ExpirationPatternType.AfterDuration
        assert policy.expiration.duration == datetime.timedelta(days=30)
        stages = policy.request_approval_settings.stages
        assert len(stages) == 2 and stages[0].duration_before_automatic_denial == datetime.timedelta(days=14)
        assert isinstance(stages[0].primary_approvers[0], RequestorManager) and stages[0].primary_approvers[0].manager_level == 1
        assert isinstance(stages[0].fallback_primary_approvers[0], SingleUser)
        assert isinstance(stages[1].primary_approvers[0], GroupMembers) and stages[1].primary_approvers[0].group_id == group.id
        assert isinstance(policy.specific_allowed_targets[0], GroupMembers)
        assert isinstance(policy.questions[0], AccessPackageTextInputQuestion) and policy.questions[0].text == "Why?"
        assert policy.requestor_settings.allow_custom_assignment_schedule is True

        # PUT is a full replace (the SDK exposes only .put() on /assignmentPolicies/{id})
        await em.assignment_policies.by_access_package_assignment_policy_id(policy.id).put(
            AccessPackageAssignmentPolicy(display_name="renamed", access_package=AccessPackage(id=package.id),
                                          allowed_target_scope=AllowedTargetScope.AllMemberUsers))
        got = await em.assignment_policies.by_access_package_assignment_policy_id(policy.id).get()
        assert got.display_name == "renamed" and got.allowed_target_scope == AllowedTargetScope.AllMemberUsers
        assert got.request_approval_settings is None and got.questions == []

        # PATCH merges, under the package's path
        pkg_policy = em.access_packages.by_access_package_id(package.id).assignment_policies.by_access_package_assignment_policy_id(policy.id)
        await pkg_policy.patch(AccessPackageAssignmentPolicy(description="merged"))
        got = await pkg_policy.get()
        assert got.description == "merged" and got.display_name == "renamed"

        # a package with a policy cannot be deleted; after the policy goes, it can
        with pytest.raises(ODataError) as e:
            await em.access_packages.by_access_package_id(package.id).delete()
        assert e.value.response_status_code == 409
        await em.assignment_policies.by_access_package_assignment_policy_id(policy.id).delete()
        await em.access_packages.by_access_package_id(package.id).delete()
        await em.catalogs.by_access_package_catalog_id(catalog.id).delete()

    run(story)
