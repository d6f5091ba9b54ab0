"""What the Graph SDK stories share: a GraphServiceClient per bearer token, the server's test
clock and job queue (Steward's test-only /ops routes), personal tokens made with the `steward`
CLI, people, groups and packages named after the run, and asserting a refused call.

Configuration (tests/sdk/run.sh sets all of them):
  STEWARD_BASE_URL           e.g. http://127.0.0.1:18080/v1.0
  STEWARD_TOKEN              bearer token of a global administrator
  STEWARD_TEST_BIN           the steward binary the server runs (for `steward token create`)
  STEWARD_TEST_DATABASE_URL  the server's database (the CLI writes tokens there)
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import os
import subprocess
import tempfile
import urllib.request
import uuid
from typing import Any, Awaitable, Callable, Optional, TypeVar

import pytest
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.entitlement_management.assignments.assignments_request_builder import (
    AssignmentsRequestBuilder,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.access_package_resource import AccessPackageResource
from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
from msgraph.generated.models.access_package_resource_role import AccessPackageResourceRole
from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
from msgraph.generated.models.access_package_resource_scope import AccessPackageResourceScope
from msgraph.generated.models.access_package_subject import AccessPackageSubject
from msgraph.generated.models.entitlement_management_schedule import EntitlementManagementSchedule
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.user import User
from msgraph.graph_request_adapter import GraphRequestAdapter

BASE = os.environ.get("STEWARD_BASE_URL", "").rstrip("/")
TOKEN = os.environ.get("STEWARD_TOKEN", "")
BIN = os.environ.get("STEWARD_TEST_BIN", "")
DATABASE_URL = os.environ.get("STEWARD_TEST_DATABASE_URL", "")
ORIGIN = BASE.removesuffix("/v1.0")

T = TypeVar("T")


def require_env() -> None:
    missing = [n for n, v in (("STEWARD_BASE_URL", BASE), ("STEWARD_TOKEN", TOKEN), ("STEWARD_TEST_BIN", BIN),
                              ("STEWARD_TEST_DATABASE_URL", DATABASE_URL)) if not v]
    if missing:
        pytest.fail(f"{', '.join(missing)} must be set (tests/sdk/run.sh sets them)")


# ---------------------------------------------------------------------------------------------
# clients, the test clock, tokens
# ---------------------------------------------------------------------------------------------

class StaticTokenProvider(AccessTokenProvider):
    def __init__(self, token: str):
        self._token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])  # empty = any host


class Clients:
    """One GraphServiceClient per token, all closed at the end of the story."""

    def __init__(self) -> None:
        self._made: dict[str, GraphServiceClient] = {}

    def __call__(self, token: str = "") -> GraphServiceClient:
        token = token or TOKEN
        if token not in self._made:
            adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticTokenProvider(token)))
            adapter.base_url = BASE  # before GraphServiceClient(), which only sets it when empty
            self._made[token] = GraphServiceClient(request_adapter=adapter)
        return self._made[token]

    async def close(self) -> None:
        for c in self._made.values():
            http = getattr(c.request_adapter, "_http_client", None)
            if http is not None:
                await http.aclose()


def run(story: Callable[[Clients], Awaitable[T]]) -> T:
    """Runs `await story(clients)` on a fresh event loop; `clients()` is the administrator."""
    require_env()

    async def main() -> T:
        clients = Clients()
        try:
            return await story(clients)
        finally:
            await clients.close()

    return asyncio.run(main())


def em_of(client: GraphServiceClient):
    return client.identity_governance.entitlement_management


def ops(method: str, path: str, body: Optional[dict] = None) -> dict:
    """Steward's test-only routes (not Graph; the SDK has no builders for them)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{ORIGIN}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def parse_now(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def now() -> datetime.datetime:
    return parse_now(ops("GET", "/ops/clock")["now"])


def advance(delta: datetime.timedelta) -> datetime.datetime:
    # A Python timedelta string, exactly what the SDK sends for durations: the route takes both.
    return parse_now(ops("POST", "/ops/clock", {"advance": str(delta)})["now"])


def drain() -> int:
    """Runs every due job in the server (the worker's round in hand included)."""
    return ops("POST", "/ops/jobs/drain")["ran"]


def personal_token(user_id: str, name: str) -> str:
    """`steward token create --user`, against the server's database."""
    with tempfile.TemporaryDirectory() as cwd:  # keeps any ./data or ./steward.toml out of the way
        out = subprocess.run(
            [BIN, "token", "create", "--name", name, "--user", user_id, "--database-url", DATABASE_URL],
            cwd=cwd, capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")} | {"STEWARD_LOG": "warn"},
        )
    assert out.returncode == 0, f"steward token create failed ({out.returncode}): {out.stderr}"
    secret = out.stdout.strip()
    assert secret and "\n" not in secret, f"unexpected output: {out.stdout!r}"
    return secret


def aware(d: datetime.datetime) -> datetime.datetime:
    assert d is not None and d.tzinfo is not None and d.utcoffset() is not None, d
    return d


@dataclasses.dataclass
class Person:
    id: str
    name: str
    token: str


@dataclasses.dataclass
class Naming:
    """Makes directory and catalog objects named after one test run (`run`), so runs never clash."""

    run: str

    async def new_group(self, c: GraphServiceClient, name: str) -> Group:
        return await c.groups.post(Group(display_name=f"{self.run} {name}", mail_nickname=f"{self.run.lower()}-{name.lower().replace(' ', '-')}",
                                         security_enabled=True, mail_enabled=False))


    async def new_person(self, c: GraphServiceClient, name: str, manager: Optional[Person] = None,
                         department: Optional[str] = "Engineering") -> Person:
        u = await c.users.post(User(
            display_name=f"{self.run} {name}", user_principal_name=f"{name.lower()}.{self.run.lower()}@contoso.example",
            mail_nickname=f"{name.lower()}{self.run.lower()}", account_enabled=True, department=department,
            password_profile=PasswordProfile(password=uuid.uuid4().hex, force_change_password_next_sign_in=True)))
        if manager is not None:
            await c.users.by_user_id(u.id).manager.ref.put(ReferenceUpdate(odata_id=f"{BASE}/users/{manager.id}"))
        return Person(u.id, u.display_name, personal_token(u.id, f"{self.run}-{name}"))


    async def package_granting(self, c: GraphServiceClient, catalog_id: str, group: Group, name: str) -> AccessPackage:
        em = em_of(c)
        await em.resource_requests.post(AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            resource=AccessPackageResource(origin_id=group.id, origin_system="AadGroup"),
            catalog=AccessPackageCatalog(id=catalog_id)))
        resources = (await em.catalogs.by_access_package_catalog_id(catalog_id).resources.get()).value
        resource = next(r for r in resources if r.origin_id == group.id)
        package = await em.access_packages.post(AccessPackage(
            display_name=f"{self.run} {name}", description=name, catalog=AccessPackageCatalog(id=catalog_id)))
        await em.access_packages.by_access_package_id(package.id).resource_role_scopes.post(AccessPackageResourceRoleScope(
            role=AccessPackageResourceRole(origin_id=f"Member_{group.id}", origin_system="AadGroup",
                                           resource=AccessPackageResource(id=resource.id)),
            scope=AccessPackageResourceScope(origin_id=group.id, origin_system="AadGroup")))
        return package


def admin_add(package: AccessPackage, policy: AccessPackageAssignmentPolicy, target: Person,
              sched: Optional[EntitlementManagementSchedule] = None) -> AccessPackageAssignmentRequest:
    return AccessPackageAssignmentRequest(
        request_type=AccessPackageRequestType.AdminAdd, schedule=sched,
        assignment=AccessPackageAssignment(access_package=AccessPackage(id=package.id),
                                           assignment_policy=AccessPackageAssignmentPolicy(id=policy.id),
                                           target=AccessPackageSubject(object_id=target.id)))


async def submit(c: GraphServiceClient, body: AccessPackageAssignmentRequest) -> AccessPackageAssignmentRequest:
    return await em_of(c).assignment_requests.post(body)


async def assignments_of(c: GraphServiceClient, person: Person, package: AccessPackage) -> list[AccessPackageAssignment]:
    qp = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
        filter=f"accessPackage/id eq '{package.id}' and target/objectId eq '{person.id}'",
        expand=["target", "accessPackage"], orderby=["id"])
    return (await em_of(c).assignments.get(request_configuration=RequestConfiguration(query_parameters=qp))).value


async def member_ids(c: GraphServiceClient, group: Group) -> set[str]:
    return {m.id for m in (await c.groups.by_group_id(group.id).members.get()).value}


async def refused(call: Awaitable[Any], *statuses: int) -> ODataError:
    """Awaits `call`, which must fail with a Graph error of one of `statuses` (any 4xx if none)."""
    with pytest.raises(ODataError) as e:
        await call
    status = e.value.response_status_code
    if statuses:
        assert status in statuses, f"{status} not in {statuses}: {e.value.error.message if e.value.error else e.value}"
    else:
        assert 400 <= status <= 499, status
    assert e.value.error is not None and e.value.error.code and e.value.error.message, e.value
    return e.value


