"""What the fuzzer found that only the live server shows, each pinned by a test that fails without its fix (the
rest are in tests/unit/test_fuzz_findings.py)."""
import pytest
import requests

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("method", ["TRACE", "PATCH"])
def test_a_method_no_route_has_gets_405_in_json_not_the_servers_501_page(fuzz_stack, method):
    # Found as TRACE /api/status: 501 with http.server's HTML error page (infra/serve_api.py).
    response = requests.request(method, f"{fuzz_stack.api_url}/api/status", timeout=10)
    assert response.status_code == 405 and response.headers["Content-Type"] == "application/json"
    assert "method" in response.text.lower()
