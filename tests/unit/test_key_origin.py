"""A provider's key goes only to its configured origin: no other URL, no redirect (issue 12)."""

from __future__ import annotations

import httpx
import pytest

from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import ProviderUnavailable
from ace_lsp.orchestrator.providers.openai import OpenAIProvider

KEY = "TESTKEY-" + "origin-0001"


def _provider(seen: list[httpx.Request], status: int = 200) -> OpenAIProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"Location": "http://evil.example/steal"} if status == 307 else {}
        return httpx.Response(status, json={}, headers=headers)

    settings = ProviderSettings(
        name="openai", kind="openai", base_url="http://127.0.0.1:9/v1", api_key=KEY
    )
    return OpenAIProvider(settings, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/v1/chat/completions",
        "https://127.0.0.1:9/v1/x",  # another scheme
        "http://127.0.0.1:10/v1/x",  # another port
    ],
)
async def test_a_request_to_another_origin_is_refused_before_it_is_sent(url: str) -> None:
    seen: list[httpx.Request] = []
    provider = _provider(seen)
    with pytest.raises(ProviderUnavailable, match="not this provider's configured base_url"):
        await provider.client.post(url, json={})
    assert seen == []
    await provider.aclose()


async def test_the_configured_origin_gets_the_key_and_a_redirect_is_not_followed() -> None:
    seen: list[httpx.Request] = []
    provider = _provider(seen, status=307)
    response = await provider.client.post("/chat/completions", json={})
    assert response.status_code == 307 and len(seen) == 1
    assert seen[0].url.host == "127.0.0.1" and seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert seen[0].headers["Accept-Encoding"] == "identity"  # no compressed replies to inflate
    await provider.aclose()
