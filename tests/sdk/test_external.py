"""Connected organizations and the entitlement-management settings through Microsoft's Graph SDK
for Python (msgraph-sdk, pinned in requirements.txt) against a running `steward serve`: typed
models and request builders only, so Microsoft's own client is known to write and parse the
shapes (identitySource subtypes polymorphic on @odata.type, the state enum, Edm.Duration as a
timedelta, sponsors as directoryObject references).

Configuration (tests/sdk/run.sh sets both):
  STEWARD_BASE_URL  e.g. http://127.0.0.1:18080/v1.0
  STEWARD_TOKEN     bearer token of a global administrator

Names carry a per-run uuid4 fragment, so the module can run again against the same database; the
settings are put back as they were found.
"""
from __future__ import annotations

import asyncio
import datetime
import os
import uuid
from typing import Any, Awaitable, Callable, TypeVar

import pytest
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.entitlement_management.connected_organizations.connected_organizations_request_builder import (
    ConnectedOrganizationsRequestBuilder,
)
from msgraph.generated.models.access_package_external_user_lifecycle_action import AccessPackageExternalUserLifecycleAction
from msgraph.generated.models.azure_active_directory_tenant import AzureActiveDirectoryTenant
from msgraph.generated.models.connected_organization import ConnectedOrganization
from msgraph.generated.models.connected_organization_state import ConnectedOrganizationState
from msgraph.generated.models.domain_identity_source import DomainIdentitySource
from msgraph.generated.models.entitlement_management_settings import EntitlementManagementSettings
from msgraph.generated.models.external_domain_federation import ExternalDomainFederation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.user import User
from msgraph.graph_request_adapter import GraphRequestAdapter

BASE = os.environ.get("STEWARD_BASE_URL", "").rstrip("/")
TOKEN = os.environ.get("STEWARD_TOKEN", "")
RUN = f"Ext{uuid.uuid4().hex[:8]}"

T = TypeVar("T")


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
    async def main() -> T:
        client = make_client()
        try:
            return await story(client)
        finally:
            http = getattr(client.request_adapter, "_http_client", None)
            if http is not None:
                await http.aclose()
    return asyncio.run(main())


async def expect_error(call: Awaitable[Any], status: int) -> ODataError:
    try:
        await call
    except ODataError as e:
        assert e.response_status_code == status, f"{e.response_status_code}: {e.error.message if e.error else e}"
        assert e.error is not None and e.error.code and e.error.message
        return e
    pytest.fail(f"expected an ODataError {status}")


def test_connected_organization_create_list_get_update_sponsors_delete() -> None:
    async def story(client: GraphServiceClient) -> None:
        em = client.identity_governance.entitlement_management
        domain = f"{RUN.lower()}.example"
        tenant = str(uuid.uuid4())
        created = await em.connected_organizations.post(ConnectedOrganization(
            display_name=f"{RUN} Fabrikam", description="A partner",
            identity_sources=[
                DomainIdentitySource(domain_name=domain, display_name=domain),
                AzureActiveDirectoryTenant(tenant_id=tenant, display_name="Fabrikam tenant"),
                ExternalDomainFederation(domain_name=f"sso.{domain}", issuer_uri=f"https://idp.{domain}/saml",
                                         display_name="Fabrikam SSO"),
            ],
            state=ConnectedOrganizationState.Configured))
        assert created is not None and created.id
        assert created.display_name == f"{RUN} Fabrikam"
        assert created.state == ConnectedOrganizationState.Configured
        assert isinstance(created.created_date_time, datetime.datetime) and created.created_date_time.tzinfo is not None
        sources = created.identity_sources or []
        assert [type(s) for s in sources] == [DomainIdentitySource, AzureActiveDirectoryTenant, ExternalDomainFederation]
        assert sources[0].domain_name == domain
        assert sources[1].tenant_id == tenant
        assert sources[2].issuer_uri == f"https://idp.{domain}/saml"

        item = em.connected_organizations.by_connected_organization_id(created.id)
        got = await item.get()
        assert got is not None and got.id == created.id
        assert got.description == "A partner"
        assert isinstance((got.identity_sources or [None])[0], DomainIdentitySource)

        qp = ConnectedOrganizationsRequestBuilder.ConnectedOrganizationsRequestBuilderGetQueryParameters(
            filter=f"startswith(displayName,'{RUN}')", count=True, top=5, orderby=["displayName"])
        page = await em.connected_organizations.get(request_configuration=RequestConfiguration(query_parameters=qp))
        assert page is not None and [o.id for o in page.value or []] == [created.id]
        assert page.odata_count == 1
        assert isinstance(page.value[0].identity_sources[1], AzureActiveDirectoryTenant)

        await item.patch(ConnectedOrganization(state=ConnectedOrganizationState.Proposed, description="proposed now"))
        got = await item.get()
        assert got.state == ConnectedOrganizationState.Proposed and got.description == "proposed now"

        # A domain belongs to one connected organization at most.
        await expect_error(em.connected_organizations.post(ConnectedOrganization(
            display_name=f"{RUN} Copy", identity_sources=[DomainIdentitySource(domain_name=domain)])), 409)

        # Sponsors, linked and unlinked through $ref, read back as directory objects (users).
        user = await client.users.post(User(
            display_name=f"{RUN} Sponsor", user_principal_name=f"sponsor.{RUN.lower()}@contoso.example",
            mail_nickname=f"sponsor{RUN.lower()}", account_enabled=True,
            password_profile=PasswordProfile(password=uuid.uuid4().hex, force_change_password_next_sign_in=True)))
        await item.internal_sponsors.ref.post(ReferenceCreate(odata_id=f"{BASE}/users/{user.id}"))
        sponsors = await item.internal_sponsors.get()
        assert sponsors is not None and [s.id for s in sponsors.value or []] == [user.id]
        assert isinstance(sponsors.value[0], User)
        assert not (await item.external_sponsors.get()).value
        await item.internal_sponsors.by_directory_object_id(user.id).ref.delete()
        assert not (await item.internal_sponsors.get()).value

        await item.delete()
        await expect_error(item.get(), 404)
        await client.users.by_user_id(user.id).delete()

    run(story)


def test_settings_read_and_patch() -> None:
    async def story(client: GraphServiceClient) -> None:
        settings = client.identity_governance.entitlement_management.settings
        before = await settings.get()
        assert before is not None and before.id
        assert isinstance(before.duration_until_external_user_deleted_after_blocked, datetime.timedelta)
        assert isinstance(before.external_user_lifecycle_action, AccessPackageExternalUserLifecycleAction)
        try:
            # The SDK writes the duration as Python's str(timedelta): "12 days, 0:00:00".
            await settings.patch(EntitlementManagementSettings(
                external_user_lifecycle_action=AccessPackageExternalUserLifecycleAction.BlockSignIn,
                duration_until_external_user_deleted_after_blocked=datetime.timedelta(days=12)))
            after = await settings.get()
            assert after.external_user_lifecycle_action == AccessPackageExternalUserLifecycleAction.BlockSignIn
            assert after.duration_until_external_user_deleted_after_blocked == datetime.timedelta(days=12)
        finally:
            await settings.patch(EntitlementManagementSettings(
                external_user_lifecycle_action=before.external_user_lifecycle_action,
                duration_until_external_user_deleted_after_blocked=before.duration_until_external_user_deleted_after_blocked))
        restored = await settings.get()
        assert restored.external_user_lifecycle_action == before.external_user_lifecycle_action
        assert restored.duration_until_external_user_deleted_after_blocked == \
            before.duration_until_external_user_deleted_after_blocked

    run(story)
