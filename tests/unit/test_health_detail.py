"""What a failed health check is stored and posted with: a sentence from bot.messages chosen by the error's kind,
never the error's own text (which may quote whatever a server said)."""

from __future__ import annotations

import pytest

from bot import messages
from bot.errors import (
    DirectoryUnavailableError,
    EntraAuthError,
    EntraReauthRequiredError,
    EntraUnavailableError,
    GraphError,
    GraphPermissionError,
    GraphThrottledError,
    GraphUnavailableError,
    RequestNotFoundError,
    ResetbotError,
)
from bot.services.health import failure_detail

#: What a server might put in an error the client quotes: markup, a secret-looking value, a mention.
HOSTILE = "<!channel> password=Hunter2! *bold* https://evil.example/x"


@pytest.mark.parametrize(("error", "detail"), [
    (DirectoryUnavailableError(HOSTILE, fault="unreachable"), messages.health.health_ad_unreachable()),
    (DirectoryUnavailableError(HOSTILE, fault="bind_refused"), messages.health.health_ad_bind_refused()),
    (DirectoryUnavailableError(HOSTILE, fault="base_unreadable"), messages.health.health_ad_base_unreadable()),
    (DirectoryUnavailableError(HOSTILE), messages.health.health_ad_failed()),
    (EntraAuthError(HOSTILE, code="AADSTS7000215", status=401),
     messages.health.health_entra_refused("AADSTS7000215", 401)),
    (EntraUnavailableError(HOSTILE, status=503), messages.health.health_entra_unavailable(None, 503)),
    (EntraReauthRequiredError(HOSTILE, code="AADSTS70043"), messages.health.health_signin_expired()),
    (GraphPermissionError(HOSTILE, code="Authorization_RequestDenied", status=403),
     messages.health.health_graph_denied("Authorization_RequestDenied", 403)),
    (GraphThrottledError(HOSTILE, status=429), messages.health.health_graph_throttled()),
    (GraphUnavailableError(HOSTILE, status=503), messages.health.health_graph_unavailable()),
    (GraphError(HOSTILE, code="Request_BadRequest", status=400),
     messages.health.health_microsoft_failed("GraphError", "Request_BadRequest", 400)),
    (RequestNotFoundError(HOSTILE), messages.health.health_check_failed("RequestNotFoundError")),
])
def test_each_kind_of_failure_has_its_own_sentence_and_none_repeats_the_error(error: ResetbotError,
                                                                              detail: str) -> None:
    said = failure_detail(error)
    assert said == detail
    assert not any(bit in said for bit in ("Hunter2", "<!channel>", "evil.example"))


def test_a_microsoft_code_is_repeated_only_when_it_looks_like_one() -> None:
    assert "(AADSTS90033, HTTP 503)." in failure_detail(EntraUnavailableError("down", code="AADSTS90033", status=503))
    odd = failure_detail(EntraUnavailableError("down", code=HOSTILE))
    assert odd == messages.health.health_entra_unavailable(None, None) and "Hunter2" not in odd and "()" not in odd
    assert failure_detail(GraphError("x", status=418)) == (
        "Microsoft answered the check with an error, GraphError (HTTP 418); the bot's log has it.")
