"""Microsoft's Graph SDK for Python (msgraph-sdk) driving a running `steward serve`.

Everything goes through the SDK's typed models and request builders, pointed at Steward by
changing the adapter's base URL, as a Graph user would. Each run uses fresh names, so the test
can run twice against one database.
"""
import asyncio
import datetime
import os
import uuid
from typing import Any

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

BASE = os.environ.get("STEWARD_BASE_URL", "")
TOKEN = os.environ.get("STEWARD_TOKEN", "")


class StaticToken(AccessTokenProvider):
    def __init__(self, token: str):
        self._token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def client() -> GraphServiceClient:
    if not BASE or not TOKEN:
        pytest.fail("STEWARD_BASE_URL and STEWARD_TOKEN must be set (tests/sdk/run.sh sets them)")
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(TOKEN)))
    adapter.base_url = BASE  # before GraphServiceClient(), which only sets it when empty
    return GraphServiceClient(request_adapter=adapter)


def run(coro):
    return asyncio.run(coro)


def unique() -> str:
    return uuid.uuid4().hex[:8]


def aware(dt: datetime.datetime) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() == datetime.timedelta(0)


async def new_group(c: GraphServiceClient, name: str) -> Group:
    g = await c.groups.post(Group(display_name=name, description=f"{name} team", mail_nickname=name.lower(),
                                  security_enabled=True, mail_enabled=False))
    assert g.id and g.display_name == name and g.description == f"{name} team"
    assert g.mail_nickname == name.lower() and g.security_enabled is True and g.mail_enabled is False
    return g


async def new_catalog(c: GraphServiceClient, name: str) -> AccessPackageCatalog:
    em = c.identity_governance.entitlement_management
    return await em.catalogs.post(AccessPackageCatalog(display_name=name, description=f"{name} catalog",
                                                       is_externally_visible=False, state=AccessPackageCatalogState.Published))


async def add_group_to_catalog(c: GraphServiceClient, catalog_id: str, group_id: str) -> AccessPackageResourceRequest:
    em = c.identity_governance.entitlement_management
    return await em.resource_requests.post(AccessPackageResourceRequest(
        request_type=AccessPackageRequestType.AdminAdd,
        resource=AccessPackageResource(origin_id=group_id, origin_system="AadGroup"),
        catalog=AccessPackageCatalog(id=catalog_id)))


def test_catalog_resources_packages_roundtrip():
    async def main():
        c = client()
        em = c.identity_governance.entitlement_management
        p = unique()
        group = await new_group(c, f"Sales{p}")

        cat = await new_catalog(c, f"Sales catalog {p}")
        got = await em.catalogs.by_access_package_catalog_id(cat.id).get()
        assert got.id == cat.id
        assert got.display_name == f"Sales catalog {p}"
        assert got.description == f"Sales catalog {p} catalog"
        assert got.is_externally_visible is False
        assert got.state == AccessPackageCatalogState.Published
        assert got.catalog_type == AccessPackageCatalogType.UserManaged
        assert aware(got.created_date_time) and aware(got.modified_date_time)

        req = await add_group_to_catalog(c, cat.id, group.id)
        assert req.id and req.state == AccessPackageRequestState.Delivered
        assert req.request_type == AccessPackageRequestType.AdminAdd

        res = await em.catalogs.by_access_package_catalog_id(cat.id).resources.get(request_configuration=RequestConfiguration(
            query_parameters=ResourcesRequestBuilder.ResourcesRequestBuilderGetQueryParameters(expand=["roles", "scopes"])))
        assert len(res.value) == 1
        r = res.value[0]
        assert r.origin_id == group.id and r.origin_system == "AadGroup" and r.display_name == group.display_name
        assert {x.display_name for x in r.roles} == {"Member", "Owner"}
        assert {x.origin_id for x in r.roles} == {f"Member_{group.id}", f"Owner_{group.id}"}
        assert len(r.scopes) == 1 and r.scopes[0].is_root_scope is True and r.scopes[0].origin_id == group.id

        roles = await em.catalogs.by_access_package_catalog_id(cat.id).resource_roles.get(request_configuration=RequestConfiguration(
            query_parameters=ResourcesRequestBuilder.ResourcesRequestBuilderGetQueryParameters(
                filter=f"originSystem eq 'AadGroup' and resource/id eq '{r.id}'", orderby=["displayName"])))
        assert [x.display_name for x in roles.value] == ["Member", "Owner"]

        ap = await em.access_packages.post(AccessPackage(display_name=f"Sales toolkit {p}", description="CRM and more",
                                                         is_hidden=False, catalog=AccessPackageCatalog(id=cat.id)))
        assert ap.id and ap.display_name == f"Sales toolkit {p}" and ap.description == "CRM and more" and ap.is_hidden is False
        assert aware(ap.created_date_time) and aware(ap.modified_date_time)

        rrs = await em.access_packages.by_access_package_id(ap.id).resource_role_scopes.post(AccessPackageResourceRoleScope(
            role=AccessPackageResourceRole(origin_id=f"Member_{group.id}", origin_system="AadGroup",
                                           resource=AccessPackageResource(id=r.id)),
            scope=AccessPackageResourceScope(origin_id=group.id, origin_system="AadGroup")))
        assert rrs.id and aware(rrs.created_date_time)

        full = await em.access_packages.by_access_package_id(ap.id).get(request_configuration=RequestConfiguration(
            query_parameters=AccessPackageItemRequestBuilder.AccessPackageItemRequestBuilderGetQueryParameters(
                expand=["resourceRoleScopes($expand=role,scope)", "catalog"])))
        assert full.catalog.id == cat.id and full.catalog.display_name == f"Sales catalog {p}"
        assert len(full.resource_role_scopes) == 1
        scope = full.resource_role_scopes[0]
        assert scope.id == rrs.id
        assert scope.role.display_name == "Member" and scope.role.origin_id == f"Member_{group.id}"
        assert scope.scope.origin_id == group.id and scope.scope.is_root_scope is True

    run(main())


def test_paging_and_queries():
    async def main():
        c = client()
        em = c.identity_governance.entitlement_management
        p = unique()
        cat = await new_catalog(c, f"Paging {p}")
        created = {}
        for i in range(261):
            ap = await em.access_packages.post(AccessPackage(display_name=f"{p}-pkg-{i:03}", description=f"package {i}",
                                                             catalog=AccessPackageCatalog(id=cat.id)))
            created[ap.id] = ap.display_name

        qp = AccessPackagesRequestBuilder.AccessPackagesRequestBuilderGetQueryParameters(
            filter=f"catalog/id eq '{cat.id}'", top=100, count=True, orderby=["displayName"], select=["id", "displayName"])
        first = await em.access_packages.get(request_configuration=RequestConfiguration(query_parameters=qp))
        assert first.odata_count == 261
        assert len(first.value) == 100 and first.odata_next_link
        seen = []

        def collect(item):
            seen.append(item)
            return True

        await PageIterator(first, c.request_adapter).iterate(collect)
        assert len(seen) == 261
        assert sorted(x.id for x in seen) == sorted(created)
        names = [x.display_name for x in seen]
        assert names == sorted(names)
        assert all(x.display_name == created[x.id] for x in seen)
        assert all(x.description is None and x.is_hidden is None for x in seen), "unselected properties must be absent"

        async def names_for(**kw):
            q = AccessPackagesRequestBuilder.AccessPackagesRequestBuilderGetQueryParameters(top=999, **kw)
            page = await em.access_packages.get(request_configuration=RequestConfiguration(query_parameters=q))
            return [x.display_name for x in page.value]

        assert len(await names_for(filter=f"startswith(displayName,'{p}-pkg-00')")) == 10
        assert sorted(await names_for(filter=f"contains(tolower(displayName), '{p}-pkg-25')")) == [f"{p}-pkg-25{i}" for i in range(10)]
        combo = await names_for(filter=f"catalog/id eq '{cat.id}' and (endswith(displayName,'-007') or endswith(displayName,'-008')) "
                                       f"and not (displayName eq '{p}-pkg-008')")
        assert combo == [f"{p}-pkg-007"]
        desc = await names_for(filter=f"catalog/id eq '{cat.id}'", orderby=["displayName desc"])
        assert desc == sorted(created.values(), reverse=True)

        n = await em.access_packages.count.get(request_configuration=RequestConfiguration(
            query_parameters=CountRequestBuilder.CountRequestBuilderGetQueryParameters(filter=f"startswith(displayName,'{p}-pkg-1')")))
        assert n == 100

        # clean up so a second run starts from the same state
        for ap_id in created:
            await em.access_packages.by_access_package_id(ap_id).delete()
        await em.catalogs.by_access_package_catalog_id(cat.id).delete()

    run(main())


def test_incompatibility():
    async def main():
        c = client()
        em = c.identity_governance.entitlement_management
        p = unique()
        cat = await new_catalog(c, f"SoD {p}")
        a = await em.access_packages.post(AccessPackage(display_name=f"A {p}", catalog=AccessPackageCatalog(id=cat.id)))
        b = await em.access_packages.post(AccessPackage(display_name=f"B {p}", catalog=AccessPackageCatalog(id=cat.id)))
        g = await new_group(c, f"Auditors{p}")
        pa = em.access_packages.by_access_package_id(a.id)
        pb = em.access_packages.by_access_package_id(b.id)

        await pa.incompatible_access_packages.ref.post(
            ReferenceCreate(odata_id=f"{BASE}/identityGovernance/entitlementManagement/accessPackages/{b.id}"))
        assert [x.id for x in (await pa.incompatible_access_packages.get()).value] == [b.id]
        assert [x.id for x in (await pb.access_packages_incompatible_with.get()).value] == [a.id]
        assert (await pb.incompatible_access_packages.get()).value == []

        await pa.incompatible_groups.ref.post(ReferenceCreate(odata_id=f"{BASE}/groups/{g.id}"))
        groups = (await pa.incompatible_groups.get()).value
        assert [x.id for x in groups] == [g.id] and groups[0].display_name == g.display_name

        # adding the same link twice is refused with a 4xx
        with pytest.raises(ODataError) as e:
            await pa.incompatible_access_packages.ref.post(
                ReferenceCreate(odata_id=f"{BASE}/identityGovernance/entitlementManagement/accessPackages/{b.id}"))
        assert 400 <= e.value.response_status_code < 500 and e.value.error.code

        await pa.incompatible_access_packages.by_access_package_id1(b.id).ref.delete()
        assert (await pa.incompatible_access_packages.get()).value == []
        assert (await pb.access_packages_incompatible_with.get()).value == []
        await pa.incompatible_groups.by_group_id(g.id).ref.delete()
        assert (await pa.incompatible_groups.get()).value == []

    run(main())


def test_update_and_delete():
    async def main():
        c = client()
        em = c.identity_governance.entitlement_management
        p = unique()
        group = await new_group(c, f"Ops{p}")
        cat = await new_catalog(c, f"Ops {p}")
        await add_group_to_catalog(c, cat.id, group.id)
        res = (await em.catalogs.by_access_package_catalog_id(cat.id).resources.get()).value[0]
        ap = await em.access_packages.post(AccessPackage(display_name=f"Ops {p}", description="first", is_hidden=False,
                                                         catalog=AccessPackageCatalog(id=cat.id)))
        rrs = await em.access_packages.by_access_package_id(ap.id).resource_role_scopes.post(AccessPackageResourceRoleScope(
            role=AccessPackageResourceRole(origin_id=f"Owner_{group.id}", origin_system="AadGroup", resource=AccessPackageResource(id=res.id)),
            scope=AccessPackageResourceScope(origin_id=group.id, origin_system="AadGroup")))

        await em.access_packages.by_access_package_id(ap.id).patch(AccessPackage(description="second", is_hidden=True))
        got = await em.access_packages.by_access_package_id(ap.id).get()
        assert got.description == "second" and got.is_hidden is True and got.display_name == f"Ops {p}"
        assert got.modified_date_time >= ap.modified_date_time

        await em.catalogs.by_access_package_catalog_id(cat.id).patch(
            AccessPackageCatalog(display_name=f"Ops renamed {p}", state=AccessPackageCatalogState.Unpublished))
        gc = await em.catalogs.by_access_package_catalog_id(cat.id).get()
        assert gc.display_name == f"Ops renamed {p}" and gc.state == AccessPackageCatalogState.Unpublished
        assert gc.description == f"Ops {p} catalog"

        # a catalog that still holds a package cannot be deleted
        with pytest.raises(ODataError) as e:
            await em.catalogs.by_access_package_catalog_id(cat.id).delete()
        assert 400 <= e.value.response_status_code < 500 and e.value.error.code and e.value.error.message
        assert (await em.catalogs.by_access_package_catalog_id(cat.id).get()).id == cat.id

        await em.access_packages.by_access_package_id(ap.id).resource_role_scopes.by_access_package_resource_role_scope_id(rrs.id).delete()
        await em.access_packages.by_access_package_id(ap.id).delete()
        removed = await em.resource_requests.post(AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminRemove, resource=AccessPackageResource(id=res.id),
            catalog=AccessPackageCatalog(id=cat.id)))
        assert removed.request_type == AccessPackageRequestType.AdminRemove and removed.state == AccessPackageRequestState.Delivered
        assert (await em.catalogs.by_access_package_catalog_id(cat.id).resources.get()).value == []
        await em.catalogs.by_access_package_catalog_id(cat.id).delete()
        with pytest.raises(ODataError) as e:
            await em.catalogs.by_access_package_catalog_id(cat.id).get()
        assert e.value.response_status_code == 404

    run(main())


def test_unknown_id_is_a_graph_404():
    async def main():
        c = client()
        em = c.identity_governance.entitlement_management
        with pytest.raises(ODataError) as e:
            await em.access_packages.by_access_package_id(str(uuid.uuid4())).get()
        assert e.value.response_status_code == 404
        assert e.value.error.code and e.value.error.message
        assert e.value.error.inner_error.request_id

    run(main())
