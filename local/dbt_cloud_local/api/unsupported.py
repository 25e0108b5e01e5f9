"""
The routes of dbt Cloud's official API specs that the local dbt Cloud refuses on purpose, in one table.

Every (method, path) of the two specs is either served by a router of this package, or listed here
with the reason: account administration and security (users, groups, licenses, invitations, SSO,
SCIM, service tokens, IP restrictions, private endpoints, audit logs), writes to what config.yml
declares (accounts, projects, environments, connections, credentials, repositories), and platform
features outside job orchestration (notifications, lineage integrations, adapters, the semantic
layer...). A refused route answers, after the usual token and account checks (401, 403, 404):

    400 {"status": {"code": 400, "is_success": false,
                    "user_message": "<operation> is not supported by the local dbt Cloud",
                    "developer_message": "not_supported_locally: <why, and what to do instead>"},
         "data": null}

400 with dbt Cloud's status envelope, the spec's only documented refusal that uses it: a client sees
a clear, permanent refusal it does not retry (Airflow's hook retries 429 and 5xx), and tells it from
404 (an unknown id, or a path dbt Cloud does not have) by the ``not_supported_locally`` marker.
``local/tests/dbt_cloud_local/test_contract.py`` walks both specs and fails on any route that is
neither served and valid nor refused here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request

from dbt_cloud_local.api.dependencies import Context, Granted, authenticated, path_account
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.model.fields import MAX_INT64, shown

#: How a refusal's ``developer_message`` starts: what a client matches to tell "not here" from a 404.
MARKER = "not_supported_locally"

# Why a route is refused (the rest of the developer message), by kind.
CONFIG = (
    "accounts, projects, environments, connections, credentials and repositories come from the local "
    "dbt Cloud's config.yml (accounts, projects, environments): edit it and restart the server"
)
ACCESS = (
    "the local dbt Cloud has no people, groups, licenses, invitations or permissions: an API token "
    "from its config.yml (api_tokens, or DBT_CLOUD_LOCAL_API_TOKEN) gives access to its accounts"
)
TOKENS = (
    "the local dbt Cloud's API tokens are declared in its config.yml (api_tokens, or "
    "DBT_CLOUD_LOCAL_API_TOKEN), not created through the API"
)
SSO = "the local dbt Cloud has no users to sign in or provision: no SSO, OAuth or SCIM"
NETWORK = (
    "the local dbt Cloud serves on this machine and its warehouse is a local DuckDB file: no IP "
    "restrictions, private endpoints or SSH tunnels"
)
AUDIT = "the local dbt Cloud keeps no audit log (its server log records what it did)"
NOTIFICATIONS = (
    "the local dbt Cloud sends no job notifications (email, Slack): subscribe a webhook instead "
    "(POST /api/v3/accounts/{account_id}/webhooks/subscriptions)"
)
WEBHOOK_HISTORY = (
    "the local dbt Cloud keeps no history of webhook events and receipts: a subscription shows its "
    "last delivery (http_status_code, dispatched_at), the server log every attempt"
)
PLATFORM = "a dbt Cloud platform feature outside job orchestration, which the local dbt Cloud does not have"


@dataclass(frozen=True)
class Refused:
    """One spec route the local dbt Cloud refuses: its method, path (as the spec writes it), the
    spec's operation name and why."""

    method: str
    path: str
    operation: str
    reason: str


_V2 = "/api/v2/accounts/{account_id}"
_V3 = "/api/v3/accounts/{account_id}"
_P3 = f"{_V3}/projects/{{project_id}}"

#: Every spec route the local dbt Cloud refuses, by resource.
REFUSED: tuple[Refused, ...] = (
    # v2: accounts, projects, environments, repositories (config.yml)
    Refused("POST", f"{_V2}/", "Update Account", CONFIG),
    Refused("PATCH", f"{_V2}/", "Partial Update Account", CONFIG),
    Refused("POST", f"{_V2}/projects/", "Create Project", CONFIG),
    Refused("POST", f"{_V2}/projects/{{id}}/", "Update Project", CONFIG),
    Refused("DELETE", f"{_V2}/projects/{{id}}/", "Destroy Project", CONFIG),
    Refused("POST", f"{_V2}/environments/", "Create Environment", CONFIG),
    Refused("POST", f"{_V2}/environments/{{id}}/", "Update Environment", CONFIG),
    Refused("DELETE", f"{_V2}/environments/{{id}}/", "Destroy Environment", CONFIG),
    Refused("POST", f"{_V2}/repositories/", "Create Repository", CONFIG),
    Refused("DELETE", f"{_V2}/repositories/{{id}}/", "Destroy Repository", CONFIG),
    # v2: SSH tunnels
    Refused("GET", f"{_V2}/encryptions/", "List SSH Tunnels", NETWORK),
    Refused("POST", f"{_V2}/encryptions/", "Create SSH Tunnel", NETWORK),
    Refused("GET", f"{_V2}/encryptions/{{id}}/", "Retrieve SSH Tunnel", NETWORK),
    Refused("POST", f"{_V2}/encryptions/{{id}}/", "Update SSH Tunnel", NETWORK),
    Refused("DELETE", f"{_V2}/encryptions/{{id}}/", "Destroy SSH Tunnel", NETWORK),
    # v2: people, licenses, permissions
    Refused("GET", f"{_V2}/invites/", "List Invites", ACCESS),
    Refused("GET", f"{_V2}/invites/{{id}}/", "Retrieve Invite", ACCESS),
    Refused("GET", f"{_V2}/licenses/", "List Account License Allocations", ACCESS),
    Refused("POST", f"{_V2}/permissions/{{id}}/", "Update License Permissions", ACCESS),
    Refused("POST", "/api/v2/users/{id}/", "Update User", ACCESS),
    # v2: notifications
    Refused("GET", f"{_V2}/notifications/", "List Notifications", NOTIFICATIONS),
    Refused("POST", f"{_V2}/notifications/", "Create Notification", NOTIFICATIONS),
    Refused("GET", f"{_V2}/notifications/{{id}}/", "Retrieve Notification", NOTIFICATIONS),
    Refused("POST", f"{_V2}/notifications/{{id}}/", "Update Notification", NOTIFICATIONS),
    Refused("DELETE", f"{_V2}/notifications/{{id}}/", "Destroy Notification", NOTIFICATIONS),
    Refused("POST", "/api/v2/notifications/unsubscribe/", "Unsubscribe from Notifications", NOTIFICATIONS),
    # v3: projects, environments, connections, credentials, profiles, repositories (config.yml)
    Refused("POST", f"{_V3}/projects/", "Create Project", CONFIG),
    Refused("POST", f"{_V3}/projects/{{id}}/", "Update Project", CONFIG),
    Refused("DELETE", f"{_V3}/projects/{{id}}/", "Destroy Project", CONFIG),
    Refused("POST", f"{_P3}/environments/", "Create Environment", CONFIG),
    Refused("POST", f"{_P3}/environments/{{id}}/", "Update Environment", CONFIG),
    Refused("DELETE", f"{_P3}/environments/{{id}}/", "Destroy Environment", CONFIG),
    Refused("POST", f"{_V3}/connections/", "Create Account Connection", CONFIG),
    Refused("PATCH", f"{_V3}/connections/{{id}}/", "Update Account Connection", CONFIG),
    Refused("DELETE", f"{_V3}/connections/{{id}}/", "Delete Account Connection Delete", CONFIG),
    Refused("POST", f"{_P3}/connections/", "Create Connection", CONFIG),
    Refused("POST", f"{_P3}/connections/{{id}}/", "Update Connection", CONFIG),
    Refused("DELETE", f"{_P3}/connections/{{id}}/", "Destroy Connection", CONFIG),
    Refused("POST", f"{_P3}/credentials/", "Create Credentials", CONFIG),
    Refused("POST", f"{_P3}/credentials/{{id}}/", "Update Credentials", CONFIG),
    Refused("PATCH", f"{_P3}/credentials/{{id}}/", "Partial Update Credentials", CONFIG),
    Refused("DELETE", f"{_P3}/credentials/{{id}}/", "Delete Credentials", CONFIG),
    Refused("POST", f"{_P3}/profiles/", "Create Profile", CONFIG),
    Refused("PATCH", f"{_P3}/profiles/{{id}}/", "Update Profile", CONFIG),
    Refused("DELETE", f"{_P3}/profiles/{{id}}/", "Delete Profile", CONFIG),
    Refused("POST", f"{_P3}/repositories/", "Create Repository", CONFIG),
    Refused("POST", f"{_P3}/repositories/{{id}}/", "Update Repository", CONFIG),
    Refused("DELETE", f"{_P3}/repositories/{{id}}/", "Destroy Repository", CONFIG),
    Refused("POST", f"{_P3}/managed-repositories/", "Create Managed Repository", CONFIG),
    Refused(
        "GET",
        f"{_P3}/managed-repositories/{{repository_id}}/download/",
        "Retrieve Projects Managed Repositories Download",
        CONFIG,
    ),
    Refused("POST", f"{_P3}/adapters/", "Create Adapter", CONFIG),
    Refused("GET", f"{_P3}/adapters/{{id}}/", "Retrieve Adapter", CONFIG),
    Refused("POST", f"{_P3}/adapters/{{id}}/", "Update Adapter", CONFIG),
    Refused("DELETE", f"{_P3}/adapters/{{id}}/", "Destroy Adapter", CONFIG),
    Refused("POST", f"{_P3}/extended-attributes/", "Create Extended Attributes", CONFIG),
    Refused("GET", f"{_P3}/extended-attributes/{{id}}/", "Retrieve Extended Attributes", CONFIG),
    Refused("PATCH", f"{_P3}/extended-attributes/{{id}}/", "Update Extended Attributes", CONFIG),
    Refused("DELETE", f"{_P3}/extended-attributes/{{id}}/", "Destroy Extended Attributes", CONFIG),
    Refused(
        "DELETE",
        f"{_V3}/environments/{{environment_id}}/sao-cache/",
        "Delete Environment SAO Cache",
        PLATFORM,
    ),
    # v3: people, groups, licenses, invitations
    Refused("GET", f"{_V3}/groups/", "List Groups", ACCESS),
    Refused("POST", f"{_V3}/groups/", "Create Group", ACCESS),
    Refused("GET", f"{_V3}/groups/{{id}}/", "Retrieve Group", ACCESS),
    Refused("POST", f"{_V3}/groups/{{id}}/", "Update Group", ACCESS),
    Refused("POST", f"{_V3}/assign-groups/", "Assign User to Groups", ACCESS),
    Refused("POST", f"{_V3}/group-permissions/{{group_id}}/", "Assign Group Permissions", ACCESS),
    Refused("POST", f"{_V3}/invites/", "Send user invites", ACCESS),
    Refused("GET", f"{_V3}/license-maps/", "List License Maps", ACCESS),
    Refused("POST", f"{_V3}/license-maps/", "Create License Map", ACCESS),
    Refused("GET", f"{_V3}/license-maps/{{id}}/", "Retrieve License Map", ACCESS),
    Refused("POST", f"{_V3}/license-maps/{{id}}/", "Update License Map", ACCESS),
    Refused("DELETE", f"{_V3}/license-maps/{{id}}/", "Destroy License Map", ACCESS),
    Refused("GET", "/api/v3/users/{user_id}/credentials/", "List User Credentials", ACCESS),
    Refused("POST", "/api/v3/users/{user_id}/credentials/", "Create User Credentials", ACCESS),
    Refused("GET", "/api/v3/users/{user_id}/credentials/{id}/", "Get User Credentials", ACCESS),
    Refused("POST", "/api/v3/users/{user_id}/credentials/{id}/", "Update User Credentials", ACCESS),
    Refused("DELETE", "/api/v3/users/{user_id}/credentials/{id}/", "Delete User Credentials", ACCESS),
    # v3: tokens
    Refused("GET", f"{_V3}/service-tokens/", "List Service Tokens", TOKENS),
    Refused("POST", f"{_V3}/service-tokens/", "Create Service Token", TOKENS),
    Refused("GET", f"{_V3}/service-tokens/{{id}}/", "Retrieve Service Token", TOKENS),
    Refused("PUT", f"{_V3}/service-tokens/{{id}}/", "Update Service Token", TOKENS),
    Refused("DELETE", f"{_V3}/service-tokens/{{id}}/", "Destroy Service Token", TOKENS),
    Refused(
        "GET",
        f"{_V3}/service-tokens/{{service_token_id}}/permissions/",
        "Retrieve Service Tokens Permission",
        TOKENS,
    ),
    Refused("GET", f"{_V3}/users/{{user_id}}/account-apikeys/", "List Account Scoped PATs", TOKENS),
    Refused("POST", f"{_V3}/users/{{user_id}}/account-apikeys/", "Create Account Scoped PAT", TOKENS),
    Refused("GET", f"{_V3}/users/{{user_id}}/account-apikeys/{{id}}/", "Get Account Scoped PAT", TOKENS),
    Refused("POST", f"{_V3}/users/{{user_id}}/account-apikeys/{{id}}/", "Rotate Account Scoped PAT", TOKENS),
    Refused(
        "DELETE", f"{_V3}/users/{{user_id}}/account-apikeys/{{id}}/", "Delete Account Scoped PAT", TOKENS
    ),
    # v3: SSO, OAuth, SCIM
    Refused("GET", f"{_V3}/oauth-configurations/", "List OAuthConfigurations", SSO),
    Refused("POST", f"{_V3}/oauth-configurations/", "Create OAuthConfiguration", SSO),
    Refused("GET", f"{_V3}/oauth-configurations/{{id}}/", "Retrieve OAuth Configuration", SSO),
    Refused("POST", f"{_V3}/oauth-configurations/{{id}}/", "Update OAuth Configuration", SSO),
    Refused("DELETE", f"{_V3}/oauth-configurations/{{id}}/", "Destroy OAuth Configuration", SSO),
    Refused("GET", f"{_V3}/scim-config/", "Retrieve SCIM configuration", SSO),
    Refused("POST", f"{_V3}/scim-config/", "Create SCIM configuration", SSO),
    Refused("GET", f"{_V3}/scim-config/tokens/", "Retrieve SCIM tokens", SSO),
    Refused("POST", f"{_V3}/scim-config/tokens/", "Create SCIM token", SSO),
    Refused("GET", f"{_V3}/scim-config/tokens/{{id}}/", "Retrieve SCIM token", SSO),
    Refused("DELETE", f"{_V3}/scim-config/tokens/{{id}}/", "Delete SCIM token", SSO),
    Refused("GET", f"{_V3}/scim/v2/Groups", "List SCIM Groups", SSO),
    Refused("POST", f"{_V3}/scim/v2/Groups", "Create SCIM Group", SSO),
    Refused("GET", f"{_V3}/scim/v2/Groups/{{group_id}}", "Get SCIM Group", SSO),
    Refused("PUT", f"{_V3}/scim/v2/Groups/{{group_id}}", "Update SCIM Group", SSO),
    Refused("PATCH", f"{_V3}/scim/v2/Groups/{{group_id}}", "Patch SCIM Group", SSO),
    Refused("DELETE", f"{_V3}/scim/v2/Groups/{{group_id}}", "Delete SCIM Group", SSO),
    Refused("GET", f"{_V3}/scim/v2/ResourceTypes", "Get SCIM Resource Types", SSO),
    Refused("GET", f"{_V3}/scim/v2/ResourceTypes/{{resource_type}}", "Get SCIM Resource Type Details", SSO),
    Refused("GET", f"{_V3}/scim/v2/Schemas", "Get SCIM Schemas", SSO),
    Refused("GET", f"{_V3}/scim/v2/Schemas/{{schema_uri}}", "Get SCIM Schema Details", SSO),
    Refused("GET", f"{_V3}/scim/v2/ServiceProviderConfig", "Retrieve Scim V2 Serviceproviderconfig", SSO),
    Refused("GET", f"{_V3}/scim/v2/Users", "List SCIM Users", SSO),
    Refused("POST", f"{_V3}/scim/v2/Users", "Create SCIM User", SSO),
    Refused("GET", f"{_V3}/scim/v2/Users/{{user_id}}", "Get SCIM User", SSO),
    Refused("PUT", f"{_V3}/scim/v2/Users/{{user_id}}", "Replace SCIM User", SSO),
    Refused("PATCH", f"{_V3}/scim/v2/Users/{{user_id}}", "Update SCIM User", SSO),
    Refused("DELETE", f"{_V3}/scim/v2/Users/{{user_id}}", "Delete SCIM User", SSO),
    # v3: network access
    Refused("GET", f"{_V3}/ip-restrictions/", "List IP Restrictions", NETWORK),
    Refused("POST", f"{_V3}/ip-restrictions/", "Save IP Restriction", NETWORK),
    Refused("GET", f"{_V3}/ip-restrictions/{{id}}", "Retrieve IP Restriction", NETWORK),
    Refused("PUT", f"{_V3}/ip-restrictions/{{id}}", "Update IP Restriction", NETWORK),
    Refused("DELETE", f"{_V3}/ip-restrictions/{{id}}", "Delete IP Restriction", NETWORK),
    Refused("POST", f"{_V3}/ip-restrictions-set/", "Enable IP Restrictions", NETWORK),
    Refused(
        "GET",
        f"{_V3}/ip-restrictions-set/{{id}}/validate/",
        "Validate Client IP Against IP Restrictions",
        NETWORK,
    ),
    Refused(
        "GET",
        f"{_V3}/ip-restrictions-set/{{id}}/validate/{{rule_id}}",
        "Validate Client IP Against IP Restrictions Excluding Specified IP Rule",
        NETWORK,
    ),
    Refused("GET", f"{_V3}/private-endpoints/", "List Private Endpoints", NETWORK),
    Refused("POST", f"{_V3}/private-endpoints/", "Create Private Endpoint", NETWORK),
    Refused("GET", f"{_V3}/private-endpoints/{{pl_endpoint_ksuid}}/", "Retrieve Private Endpoint", NETWORK),
    Refused("PATCH", f"{_V3}/private-endpoints/{{pl_endpoint_ksuid}}/", "Update Private Endpoint", NETWORK),
    Refused("DELETE", f"{_V3}/private-endpoints/{{pl_endpoint_ksuid}}/", "Delete Private Endpoint", NETWORK),
    # v3: audit logs
    Refused("GET", f"{_V3}/audit-logs/", "List Recent Audit Log Events", AUDIT),
    Refused("GET", f"{_V3}/audit-logs/download/", "Get Recent Audit Log Events CSV", AUDIT),
    Refused("GET", f"{_V3}/audit-logs/export/", "Get Bulk Audit Log Export Status", AUDIT),
    Refused("POST", f"{_V3}/audit-logs/export/", "Submit Bulk Audit Log Export Request", AUDIT),
    Refused(
        "GET",
        f"{_V3}/audit-logs/export/{{job_identifier}}/download/",
        "Download Bulk Audit Log Export",
        AUDIT,
    ),
    # v3: webhook history (subscriptions themselves are served)
    Refused("GET", f"{_V3}/webhooks/event/{{event_id}}", "Retrieve Webhooks Event", WEBHOOK_HISTORY),
    Refused(
        "GET", f"{_V3}/webhooks/event/{{event_id}}/receipts", "List Webhooks Event Receipts", WEBHOOK_HISTORY
    ),
    Refused("GET", f"{_V3}/webhooks/receipt/{{receipt_id}}", "Retrieve Webhooks Receipt", WEBHOOK_HISTORY),
    Refused(
        "GET",
        f"{_V3}/webhooks/subscription/{{subscription_id}}/event/{{event_id}}/receipt",
        "List Webhooks Subscription Event Receipt",
        WEBHOOK_HISTORY,
    ),
    Refused(
        "GET",
        f"{_V3}/webhooks/subscription/{{subscription_id}}/events",
        "List Webhooks Events",
        WEBHOOK_HISTORY,
    ),
    # v3: platform features outside job orchestration
    Refused("GET", f"{_P3}/integrations/lineage/", "List Lineage Integrations", PLATFORM),
    Refused("POST", f"{_P3}/integrations/lineage/", "Create Lineage Integration", PLATFORM),
    Refused("GET", f"{_P3}/integrations/lineage/{{id}}/", "Get Lineage Integration", PLATFORM),
    Refused("PATCH", f"{_P3}/integrations/lineage/{{id}}/", "Update Lineage Integration", PLATFORM),
    Refused("DELETE", f"{_P3}/integrations/lineage/{{id}}/", "Delete Lineage Integration", PLATFORM),
    Refused(
        "GET", f"{_P3}/integrations/lineage/{{id}}/collections/", "List collections from BI tool", PLATFORM
    ),
    Refused(
        "GET",
        f"{_P3}/integrations/lineage/{{id}}/collections/{{collection_id}}/",
        "List collections from BI tool_2",
        PLATFORM,
    ),
    Refused(
        "POST",
        f"{_P3}/integrations/lineage/{{id}}/selections",
        "Update Lineage Integration Selections",
        PLATFORM,
    ),
    Refused("GET", f"{_V3}/semantic-layer-credentials/", "List Semantic Layer Credentials", PLATFORM),
    Refused("GET", f"{_V3}/favorite-assets/", "List Favorite Asset Responses", PLATFORM),
    Refused("GET", "/api/v3/adapter-schema/", "Retrieve Adapter Schema", PLATFORM),
)


def refusal(route: Refused) -> ApiError:
    """The 400 a refused route answers."""
    return ApiError(
        400,
        f"{route.operation} ({route.method} {route.path}) is not supported by the local dbt Cloud",
        f"{MARKER}: {route.reason}",
    )


async def _account_checked(request: Request, grant: Granted, ctx: Context) -> None:
    """A refused route under ``/accounts/{account_id}/`` checks the account first, as every route does
    (403 for another account's, 404 for an unknown one), then refuses."""
    if "account_id" in request.path_params:
        raw = str(request.path_params["account_id"])
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_INT64):
            raise ApiError(
                400,
                f"Invalid request parameters: account_id: {shown(raw, 30)} is no account id",
                f"Fix: ids are whole numbers from 1 to {MAX_INT64}.",
            )
        await path_account(int(raw), grant, ctx)


def _endpoint(route: Refused) -> Any:
    async def refused() -> None:
        raise refusal(route)

    refused.__doc__ = f"Refused: {route.operation}."
    return refused


router = APIRouter(dependencies=[Depends(authenticated), Depends(_account_checked)])
for _route in REFUSED:
    router.add_api_route(
        _route.path,
        _endpoint(_route),
        methods=[_route.method],
        include_in_schema=False,
        name=_route.operation,
    )
