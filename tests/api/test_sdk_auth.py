"""Alibaba Cloud's official PAI SDK against the standalone server: its AccessKey signature
(ACS3-HMAC-SHA256, the token as AccessKeySecret) and its bearer credential are accepted; wrong
credentials, altered, stale and replayed signed requests are refused with a PAI-shaped 401."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx
import pytest
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_aiworkspace20210204.models import (GetDatasetFileMetasStatisticsRequest,
                                                     ListDatasetFileMetasRequest)
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.request import DaraRequest

from mmdm.airflow_plugin.api import create_api_app, embedded_context

from .live_server import serve

TOKEN = "sdk-test-token-" + "x" * 24
STATS = GetDatasetFileMetasStatisticsRequest(dataset_version="v1", aggregate_by="tags.all")


@pytest.fixture(scope="module")
def base_url(built):
    with serve(create_api_app(embedded_context(built.workspace), token=TOKEN)) as url:
        yield url


def sdk(base_url: str, **config) -> Client:
    endpoint = base_url.removeprefix("http://")
    return Client(Config(endpoint=endpoint, protocol="http", **config))


def ak_client(base_url: str, key_id: str = "mmdm", secret: str = TOKEN, **config) -> Client:
    return sdk(base_url, access_key_id=key_id, access_key_secret=secret, **config)


def refused(call) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    assert info.value.status_code == 401, info.value
    assert info.value.code in ("InvalidSignature", "Unauthorized"), info.value
    assert TOKEN not in str(info.value.data)  # never echoed
    uuid.UUID(info.value.request_id)  # every error carries a fresh RequestId
    return info.value


def test_the_sdk_signs_with_the_access_key(base_url, built):
    client = ak_client(base_url)
    stats = client.get_dataset_file_metas_statistics(built.dataset_id, STATS).body
    assert stats.total_count > 0 and stats.dataset_file_metas_stats
    metas = client.list_dataset_file_metas(
        built.dataset_id, ListDatasetFileMetasRequest(dataset_version="v1", max_results=5)).body
    assert len(metas.dataset_file_metas) == 5


def test_a_wrong_secret_or_key_id_is_refused(base_url, built):
    wrong_secret = ak_client(base_url, secret=TOKEN + "-not")
    e = refused(lambda: wrong_secret.get_dataset_file_metas_statistics(built.dataset_id, STATS))
    assert "signature mismatch" in e.message
    wrong_key = ak_client(base_url, key_id="someone")
    e = refused(lambda: wrong_key.get_dataset_file_metas_statistics(built.dataset_id, STATS))
    assert "AccessKeyId" in e.message


def test_only_hmac_sha256_signatures_are_accepted(base_url, built):
    client = ak_client(base_url, signature_algorithm="ACS3-HMAC-SM3")
    e = refused(lambda: client.get_dataset_file_metas_statistics(built.dataset_id, STATS))
    assert "only ACS3-HMAC-SHA256" in e.message


def test_the_sdk_bearer_credential(base_url, built):
    def bearer(token: str) -> Client:
        cred = CredentialClient(CredentialConfig(type="bearer", bearer_token=token))
        return sdk(base_url, credential=cred)

    stats = bearer(TOKEN).get_dataset_file_metas_statistics(built.dataset_id, STATS).body
    assert stats.total_count > 0
    e = refused(lambda: bearer("nope").get_dataset_file_metas_statistics(built.dataset_id, STATS))
    assert "x-acs-bearer-token" in e.message


# Raw requests, signed by the SDK's own Utils.get_authorization, then tampered with.

def sign(base_url: str, path: str, query: dict[str, str], body: bytes = b"", *,
         date: datetime | None = None, method: str = "GET") -> dict[str, str]:
    """The headers the SDK's ``do_request`` would send for this request."""
    request = DaraRequest()
    request.method, request.pathname, request.query = method, path, query
    request.headers = {
        "host": base_url.removeprefix("http://"), "accept": "application/json",
        "x-acs-date": (date or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": Utils.get_nonce(),
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if body:
        request.headers["content-type"] = "application/json; charset=utf-8"
    request.headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", request.headers["x-acs-content-sha256"], "mmdm", TOKEN)
    return request.headers


@pytest.fixture
def stats_path(built) -> str:
    return f"/api/v1/statistics/datasets/{built.dataset_id}/datasetfilemetas"


QUERY = {"DatasetVersion": "v1", "AggregateBy": "tags.all"}


def send(base_url, path, query, headers, body=b"") -> httpx.Response:
    url = f"{base_url}{path}?{urlencode(query)}"  # as the SDK's compose_url does
    return httpx.request("GET", url, headers=headers, content=body)


def test_a_signed_request_is_accepted_once(base_url, stats_path):
    body = json.dumps({"note": "a signed body"}).encode()
    headers = sign(base_url, stats_path, QUERY, body)
    first = send(base_url, stats_path, QUERY, headers, body)
    assert first.status_code == 200 and first.json()["TotalCount"] > 0
    again = send(base_url, stats_path, QUERY, headers, body)  # the same nonce
    assert again.status_code == 401 and "already used" in again.json()["Message"]
    assert again.json()["Code"] == "InvalidSignature" and again.json()["RequestId"]


def test_a_body_altered_after_signing_is_refused(base_url, stats_path):
    headers = sign(base_url, stats_path, QUERY, b'{"note": "signed"}')
    r = send(base_url, stats_path, QUERY, headers, b'{"note": "swapped"}')
    assert r.status_code == 401 and "body hash mismatch" in r.json()["Message"]


def test_a_stale_date_is_refused(base_url, stats_path):
    old = datetime.now(timezone.utc) - timedelta(minutes=20)
    r = send(base_url, stats_path, QUERY, sign(base_url, stats_path, QUERY, date=old))
    assert r.status_code == 401 and "x-acs-date" in r.json()["Message"]
    # ... while one a minute old, signed the same way, is fine.
    recent = datetime.now(timezone.utc) - timedelta(minutes=1)
    assert send(base_url, stats_path, QUERY,
                sign(base_url, stats_path, QUERY, date=recent)).status_code == 200


def test_a_query_changed_after_signing_is_refused(base_url, stats_path):
    headers = sign(base_url, stats_path, QUERY)
    r = send(base_url, stats_path, {**QUERY, "AggregateBy": "tags.car"}, headers)
    assert r.status_code == 401 and "signature mismatch" in r.json()["Message"]
    # A repeated parameter appended after signing does not slip past the route either.
    headers = sign(base_url, stats_path, QUERY)
    url = f"{base_url}{stats_path}?{urlencode(QUERY)}&AggregateBy=tags.car"
    r = httpx.get(url, headers=headers)
    assert r.status_code == 401 and "repeated" in r.json()["Message"]


def test_values_are_canonicalized_as_the_sdk_does(base_url, stats_path):
    # Spaces travel as "+" (urlencode) but are signed as "%20"; "~" stays bare.
    query = {**QUERY, "WorkspaceId": "a b~c/d"}
    assert send(base_url, stats_path, query, sign(base_url, stats_path, query)).status_code == 200


def test_the_signed_body_reaches_the_app_and_the_limit_holds():
    from starlette.requests import Request
    from starlette.responses import Response

    from mmdm.airflow_plugin.api.access import TokenAuthMiddleware

    async def echo(scope, receive, send):  # answers the body it receives
        await Response(await Request(scope, receive).body())(scope, receive, send)

    with serve(TokenAuthMiddleware(echo, token=TOKEN, limit=1024)) as url:
        body = b'{"tags": ["car"]}'
        r = send(url, "/echo", {}, sign(url, "/echo", {}, body), body)
        assert r.status_code == 200 and r.content == body  # read once, replayed intact
        big = b"x" * 2048
        r = send(url, "/echo", {}, sign(url, "/echo", {}, big), big)
        assert r.status_code == 413 and r.json()["Code"] == "RequestEntityTooLarge"
