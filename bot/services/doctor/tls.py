"""TLS to a dependency (Entra ID, Graph, AD over LDAPS): the handshake against the configured CA bundle,
directly or through the outbound proxy."""

from __future__ import annotations

from pathlib import Path

from bot import messages
from bot.clients.proxy import ProxyRefusedError, ProxyUnreachableError
from bot.clients.tls_probe import CaBundleError, TlsUnreachableError, TlsUntrustedError, check_tls
from bot.services.doctor.plan import CheckResult, fail, ok
from bot.settings import ProxyUrl


def check_tls_to(name: str, url: str, ca_file: Path | None, ca_setting: str, timeout_s: float, *,
                 proxy: ProxyUrl | None = None) -> CheckResult:
    try:
        check_tls(url, ca_file, timeout_s=timeout_s, proxy=proxy)
    except ProxyRefusedError as e:
        return fail(name, messages.cli.proxy_refused(e.proxy, e.target, e.status, e.reason))
    except ProxyUnreachableError as e:
        return fail(name, messages.cli.proxy_unreachable(e.proxy, e.reason))
    except CaBundleError as e:
        return fail(name, messages.doctor.doctor_ca_bundle_unreadable(ca_setting, e.reason))
    except TlsUntrustedError as e:
        return fail(name, messages.doctor.doctor_tls_untrusted(f"{e.host}:{e.port}", e.reason, ca_setting, ca_file))
    except TlsUnreachableError as e:
        return fail(name, messages.doctor.doctor_tls_unreachable(f"{e.host}:{e.port}", e.reason))
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return ok(name, messages.doctor.doctor_tls_ok(host, ca_setting, ca_file, via=proxy.shown if proxy else None))
