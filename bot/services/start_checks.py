"""What ``resetbot run`` checks of the outbound proxy before it serves, and ``resetbot doctor`` checks too
(``bot.services.doctor.proxy``). A module of its own so that the service's start never imports the doctor's
other checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot import messages
from bot.clients.proxy import ProxyRefusedError, ProxyUnreachableError, open_tunnel, target_of
from bot.settings import ProxyUrl, Settings


@dataclass(frozen=True)
class Blocked:
    """Why the bot cannot get through: the sentence, and whether it may pass by itself (a server out of reach,
    ``transient``) or needs someone to change something (a refused credential)."""

    sentence: str
    transient: bool


def proxy_problem(proxy: ProxyUrl, urls: list[str], timeout_s: float) -> Blocked | None:
    """Why the proxy does not let the bot through to each host of ``urls`` (one CONNECT each, closed at once),
    or None. ``resetbot run`` asks this too before it starts: the client libraries would each fail in their own
    words, and Socket Mode's would quote the proxy URL, password included.

    The tunnels are tried all at once (a round trip to the proxy each, and on to the host: they add up at every
    start), and the first URL's problem is the one said, as when they were tried one after the other."""
    if not urls:
        return None
    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="proxy-check") as pool:
        problems = list(pool.map(lambda url: _tunnel_problem(proxy, url, timeout_s), urls))
    return next((p for p in problems if p is not None), None)


def _tunnel_problem(proxy: ProxyUrl, url: str, timeout_s: float) -> Blocked | None:
    host, port = target_of(url)
    try:
        open_tunnel(proxy, host, port, timeout_s=timeout_s).close()
    except ProxyRefusedError as e:
        return Blocked(messages.cli.proxy_refused(e.proxy, e.target, e.status, e.reason), transient=False)
    except ProxyUnreachableError as e:
        return Blocked(messages.cli.proxy_unreachable(e.proxy, e.reason), transient=True)
    return None


def proxied_targets(urls: list[str]) -> list[str]:
    """The distinct https URLs' ``host:port``, in order: what the bot opens CONNECT tunnels to (an ``http://`` URL,
    only the lab's, is sent to the proxy as a plain request instead)."""
    seen: dict[str, str] = {}
    for url in urls:
        if url.lower().startswith(("https://", "wss://")):
            host, port = target_of(url)
            seen.setdefault(f"{host}:{port}", url)
    return list(seen.values())


def outbound_urls(settings: Settings) -> list[str]:
    """The https URLs the bot reaches through the proxy, one per host (Slack's Web API, Entra ID, Graph)."""
    urls = [settings.slack_api_base, settings.entra_authority or "", settings.graph_base]
    return proxied_targets([u for u in urls if u])
