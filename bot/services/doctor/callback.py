"""The browser sign-in's callback: ``RESETBOT_PUBLIC_URL`` is https and answers with a certificate the system
trusts (agents' browsers trust the system's store, not the bot's CA bundles), and the redirect URI to register.
Checked directly, never through the outbound proxy: agents' browsers reach it from inside, not the bot."""

from __future__ import annotations

from urllib.parse import urlsplit

from bot import messages
from bot.clients.tls_probe import CaBundleError, TlsUnreachableError, TlsUntrustedError, check_tls
from bot.services.doctor.plan import S_CALLBACK, CheckResult, DoctorPlan, fail, ok, skip


def check_callback(plan: DoctorPlan) -> CheckResult:
    if not plan.browser_sign_in:
        return skip(S_CALLBACK, messages.doctor.doctor_callback_off())
    url, redirect = plan.public_url, plan.redirect_uri or "(none)"
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not parts.hostname:
        return fail(S_CALLBACK, messages.doctor.doctor_callback_not_https(url))
    assert url is not None
    try:
        check_tls(url, None, timeout_s=plan.tls_timeout_s)
    except TlsUntrustedError as e:
        problem = messages.doctor.doctor_tls_untrusted(f"{e.host}:{e.port}", e.reason, "RESETBOT_CALLBACK_CERT_FILE",
                                                       None)
        return fail(S_CALLBACK, messages.doctor.doctor_callback_failed(problem, redirect))
    except (TlsUnreachableError, CaBundleError) as e:
        problem = messages.doctor.doctor_tls_unreachable(f"{parts.hostname}:{parts.port or 443}",
                                                         getattr(e, "reason", type(e).__name__))
        return fail(S_CALLBACK, messages.doctor.doctor_callback_failed(problem, redirect))
    return ok(S_CALLBACK, messages.doctor.doctor_callback_ok(parts.netloc, redirect))
