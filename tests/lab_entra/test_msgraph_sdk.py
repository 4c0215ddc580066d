"""msgraph-sdk (Microsoft's own Graph client) pointed at the lab: base URL, allowed host and CA only.

The SDK takes an azure-core TokenCredential; msal is what the bot uses for tokens, so the credential here
is a few lines over msal (kept in the test: the product has its own Graph client).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph.generated.models.long_running_operation_status import LongRunningOperationStatus
from msgraph.generated.users.item.authentication.methods.item.reset_password.reset_password_post_request_body import (
    ResetPasswordPostRequestBody,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]  # msgraph-core ships no py.typed

from lab.people import person
from tests.lab_entra.conftest import AGENT_SCOPES, GRAPH_DEFAULT, EntraLab, fresh_password

PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"
#: The generated request builders warn about their own deprecated configuration classes on every call.
pytestmark = pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")


class MsalCredential:
    """azure-core's TokenCredential protocol over an msal acquire call."""

    def __init__(self, acquire: Callable[[list[str]], dict[str, Any] | None]) -> None:
        self._acquire = acquire

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        result = self._acquire(list(scopes))
        assert result is not None and "access_token" in result, result
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


def sdk(entra: EntraLab, credential: MsalCredential, scopes: list[str]) -> GraphServiceClient:
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(entra.ca_file)), trust_env=False)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=scopes, allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth, GraphClientFactory.create_with_default_middleware(client=http))
    adapter.base_url = entra.d["graph_base"]
    return GraphServiceClient(request_adapter=adapter)


def test_msgraph_sdk_reads_a_user_with_onprem_fields(entra: EntraLab) -> None:
    app = entra.confidential()
    client = sdk(entra, MsalCredential(lambda s: app.acquire_token_for_client(scopes=s)), GRAPH_DEFAULT)
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "onPremisesSyncEnabled", "onPremisesSamAccountName",
                "onPremisesSecurityIdentifier", "onPremisesDistinguishedName"])
    config = RequestConfiguration(query_parameters=query)
    user = asyncio.run(client.users.by_user_id(person("alice").upn).get(request_configuration=config))
    assert user is not None
    assert user.id == person("alice").entra_id
    assert user.on_premises_sync_enabled is True
    assert user.on_premises_sam_account_name == "alice"
    assert user.on_premises_distinguished_name == person("alice").dn
    assert (user.on_premises_security_identifier or "").startswith("S-1-5-21-")


def test_msgraph_sdk_resets_a_password_and_follows_the_operation(entra: EntraLab) -> None:
    bob = person("bob")
    pca = entra.public()
    flow = pca.initiate_device_flow(scopes=AGENT_SCOPES)
    entra.control("POST", "/device/approve", {"user_code": flow["user_code"], "upn": person("hedy").upn})
    assert "access_token" in pca.acquire_token_by_device_flow(flow)
    account = pca.get_accounts()[0]
    delegated = [f"https://graph.microsoft.com/{s}" for s in AGENT_SCOPES]
    client = sdk(entra, MsalCredential(lambda s: pca.acquire_token_silent(s, account=account)), delegated)
    headers = HeadersInspectionHandlerOption(inspect_response_headers=True)

    async def reset_and_follow() -> Any:
        method = client.users.by_user_id(bob.upn).authentication.methods.by_authentication_method_id(PASSWORD_METHOD)
        await method.reset_password.post(ResetPasswordPostRequestBody(new_password=fresh_password()),
                                         request_configuration=RequestConfiguration(options=[headers]))
        location = next(iter(headers.response_headers.get("location")))
        op_id = location.rsplit("/", 1)[1]
        operation = client.users.by_user_id(bob.entra_id).authentication.operations.by_long_running_operation_id(op_id)
        deadline = time.monotonic() + 20
        while True:
            op = await operation.get()
            assert op is not None
            done = op.status is LongRunningOperationStatus.Succeeded or op.status is LongRunningOperationStatus.Failed
            if done or time.monotonic() > deadline:
                return op
            await asyncio.sleep(0.05)

    try:
        op = asyncio.run(reset_and_follow())
        assert op.status is LongRunningOperationStatus.Succeeded, op.status_detail
        assert entra.pwd_last_set(bob) == 0
    finally:
        entra.restore(bob)
