from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from sandbox_helpers import new_customer

from drip_mcp.sandbox import Sandbox
from drip_mcp.sandbox.checkout import SESSION_TTL_S

pytestmark = pytest.mark.anyio


async def test_checkout_page_pays_once_and_redirects_with_params(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer_id = await new_customer(client)
    body = {"amount": 2500, "return_url": "https://app.example/done?x=1", "customer_id": customer_id}
    created = await client.post("/v1/checkout", json=body)
    assert created.status_code == 201
    session = created.json()
    assert session["amount_usd"] == 25.0
    assert session["url"] == f"http://sandbox.test/checkout/{session['id']}"
    assert session["expires_at"].endswith("Z")

    page = await client.get(urlsplit(session["url"]).path)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert f'action="/checkout/{session["id"]}/pay"' in page.text
    assert "$25.00" in page.text

    paid = await client.post(f"/checkout/{session['id']}/pay")
    assert paid.status_code == 303
    location = urlsplit(paid.headers["location"])
    assert location.netloc == "app.example"
    assert parse_qs(location.query) == {
        "x": ["1"],
        "session_id": [session["id"]],
        "customer_id": [customer_id],
        "status": ["completed"],
    }
    assert sandbox.store.balance(customer_id) == Decimal("125")
    again = await client.post(f"/checkout/{session['id']}/pay")
    assert again.status_code == 303
    assert sandbox.store.balance(customer_id) == Decimal("125")


async def test_checkout_for_new_external_customer_creates_it(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    body = {"amount": 500, "return_url": "https://app.example/done", "external_customer_id": "new-buyer"}
    session = (await client.post("/v1/checkout", json=body)).json()
    await client.post(f"/checkout/{session['id']}/pay")
    customers = (await client.get("/v1/customers")).json()["data"]
    assert [c["externalCustomerId"] for c in customers] == ["new-buyer"]
    assert sandbox.store.balance(customers[0]["id"]) == Decimal("105")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"amount": 499, "return_url": "https://x.example", "external_customer_id": "a"}, "amount"),
        ({"amount": 1_000_001, "return_url": "https://x.example", "external_customer_id": "a"}, "amount"),
        ({"amount": 10.5, "return_url": "https://x.example", "external_customer_id": "a"}, "amount"),
        ({"amount": 500, "external_customer_id": "a"}, "return_url"),
        ({"amount": 500, "return_url": "javascript:alert(1)", "external_customer_id": "a"}, "return_url"),
        ({"amount": 500, "return_url": "https://x.example"}, "customer_id"),
    ],
)
async def test_invalid_checkout_is_422(client: httpx2.AsyncClient, body: dict[str, object], path: str) -> None:
    response = await client.post("/v1/checkout", json=body)
    assert response.status_code == 422
    assert path in [detail["path"] for detail in response.json()["details"]]


async def test_expired_checkout_cannot_be_paid(
    client: httpx2.AsyncClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = await new_customer(client)
    body = {"amount": 500, "return_url": "https://x.example", "customer_id": customer_id}
    session = (await client.post("/v1/checkout", json=body)).json()
    later = time.time() + SESSION_TTL_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert (await client.get(f"/checkout/{session['id']}")).status_code == 410
    assert (await client.post(f"/checkout/{session['id']}/pay")).status_code == 410
    assert sandbox.store.balance(customer_id) == Decimal("100")
    assert (await client.get("/checkout/unknown")).status_code == 404
