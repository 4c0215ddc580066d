"""``resetbot run``: serve Slack (Socket Mode or HTTP, see ``bot.serve``) until SIGTERM or Ctrl-C.

Whatever stops the start (settings, the database, a Slack token Slack refuses, Slack out of reach, a port already
taken) is said in one sentence on stderr, ``resetbot cannot start: …``: a process manager's log shows the reason,
not a traceback. The exit code says whether starting again can help: ``EXIT_MUST_FIX`` (2) when something must be
changed first (a setting, a refused token or proxy credential, the schema), ``EXIT_TRY_AGAIN`` (75, EX_TEMPFAIL in
sysexits.h) when something the bot needs was out of reach (Slack, the proxy, the database, a port still held by
the instance before it), which a later start gets past. Any database error counts as out of reach: a refused
login looks like a server still starting. The shipped systemd unit never restarts the first kind.

The Slack tokens are tried before anything is served with the same calls as ``resetbot doctor`` (``auth.test``,
``apps.connections.open``, made at once), because bolt and the Socket Mode client would otherwise fail with their
own exceptions (a BoltError, a SlackApiError, a URLError) and a log line each. With an outbound proxy
(``RESETBOT_HTTPS_PROXY``), a tunnel to each of Slack, Entra ID and Graph is tried before that (all at once), so a
proxy that refuses the bot's credentials or is down is named as such, never quoted with its password.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_bolt.error import BoltError
from slack_sdk.errors import SlackClientError

from bot import messages
from bot.callback import CallbackListenError
from bot.cli import Subparsers, start_heap
from bot.clients.slack_probe import SlackProbe, SlackRefusedError, SlackUnreachableError
from bot.errors import ConfigError, DatabaseUnavailableError, ResetbotError, SlackUnavailableError
from bot.metrics import serve as serve_metrics
from bot.serve import Serving, serve_until_signalled
from bot.services.start_checks import Blocked, outbound_urls, proxy_problem
from bot.settings import Settings, SlackMode, load_settings
from bot.wiring import build_runtime

#: Seconds each start-up call to Slack may take.
SLACK_CHECK_TIMEOUT_S = 10


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("run", help="serve Slack (Socket Mode or HTTP) until stopped")
    parser.set_defaults(handler=run)


#: A start that cannot work until someone changes something.
EXIT_MUST_FIX = 2
#: A start that failed on something out of reach right now (EX_TEMPFAIL): starting again later may work.
EXIT_TRY_AGAIN = 75


def _cannot_start(reason: str, *, transient: bool = False) -> int:
    print(messages.cli.cannot_start(reason), file=sys.stderr)
    return EXIT_TRY_AGAIN if transient else EXIT_MUST_FIX


def slack_refusal(settings: Settings) -> Blocked | None:
    """Why Slack will not serve this bot (a token refused, Slack out of reach), or None. In Socket Mode the
    app-level token opens a connection URL that is dropped: the real connection opens one of its own."""
    probe = SlackProbe(settings.slack_api_base, timeout_s=SLACK_CHECK_TIMEOUT_S, proxy=settings.proxy_url(),
                       ca_file=settings.slack_ca_file)
    bot_token, app_token = settings.slack_bot_token, settings.slack_app_token
    calls: list[tuple[str, str, Callable[[], object]]] = [
        ("RESETBOT_SLACK_BOT_TOKEN", messages.cli.bot_token_kind(),
         lambda: probe.bot_identity(bot_token.get_secret_value()))]
    if settings.slack_mode == SlackMode.SOCKET and app_token is not None:
        calls.append(("RESETBOT_SLACK_APP_TOKEN", messages.cli.app_token_kind(),
                      lambda: probe.open_socket_url(app_token.get_secret_value())))
    # Both calls at once: each is a TLS handshake and a round trip to Slack (slack_sdk keeps no connection open),
    # paid at every start. The bot token's problem is said first, as when they were made one after the other.
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="slack-check") as pool:
        failures = list(pool.map(_failure_of, [call for _, _, call in calls]))
    for (setting, kind, _), failure in zip(calls, failures, strict=True):
        if isinstance(failure, SlackRefusedError):
            return Blocked(messages.doctor.doctor_slack_refused(setting, failure.error, kind), transient=False)
        if isinstance(failure, SlackUnreachableError):
            return Blocked(messages.doctor.doctor_slack_unreachable(failure.reason, settings.slack_api_base),
                           transient=True)
    return None


def _failure_of(call: Callable[[], object]) -> SlackRefusedError | SlackUnreachableError | None:
    try:
        call()
    except (SlackRefusedError, SlackUnreachableError) as e:
        return e
    return None


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully (work in flight finishes) and exit 0."""
    try:
        settings = load_settings()
        runtime = build_runtime(settings)
    except ResetbotError as e:  # settings, or a database that cannot be reached or is not at this code's schema
        return _cannot_start(str(e), transient=isinstance(e, DatabaseUnavailableError))
    proxy = settings.proxy()
    blocked = proxy_problem(proxy, outbound_urls(settings), SLACK_CHECK_TIMEOUT_S) if proxy is not None else None
    blocked = blocked or slack_refusal(settings)
    if blocked is not None:
        runtime.close(drain_s=0)
        return _cannot_start(blocked.sentence, transient=blocked.transient)
    try:
        runtime.pin_groups()  # after the token checks, so that a refused token is named as such
    except ResetbotError as e:
        runtime.close(drain_s=0)
        return _cannot_start(str(e), transient=isinstance(e, SlackUnavailableError))
    try:
        serve_metrics(port=settings.metrics_port, address=settings.metrics_address)  # a daemon thread, if set
    except ResetbotError as e:  # its port is taken (by the instance before this one, still stopping?)
        runtime.close(drain_s=0)
        return _cannot_start(str(e), transient=True)
    try:
        serving = Serving(settings, runtime)  # bolt asks auth.test again here
    except (BoltError, SlackClientError, OSError) as e:  # Slack changed its mind since slack_refusal
        runtime.close(drain_s=0)
        return _cannot_start(messages.cli.slack_start_refused(type(e).__name__), transient=isinstance(e, OSError))
    except ConfigError as e:  # the sign-in callback's certificate or key cannot be used
        runtime.close(drain_s=0)
        return _cannot_start(str(e))
    try:
        serve_until_signalled(serving, serving_started=start_heap.settle)
    except CallbackListenError as e:  # the sign-in callback's port (Socket Mode) cannot be bound
        runtime.close(drain_s=0)
        return _cannot_start(str(e), transient=True)
    except SlackRefusedError as e:  # the app-level token, refused since slack_refusal (see SocketModeIntake)
        runtime.close(drain_s=0)
        return _cannot_start(messages.cli.slack_start_refused(e.error))
    except OSError as e:  # raised by start(): the HTTP port cannot be bound, or Slack cannot be reached
        runtime.close(drain_s=0)
        reason = str(e.strerror or e)
        if settings.slack_mode == SlackMode.HTTP:
            return _cannot_start(messages.cli.cannot_listen(settings.http_host, settings.http_port, reason),
                                 transient=True)
        return _cannot_start(messages.cli.cannot_open_socket_mode(settings.slack_api_base, reason), transient=True)
    return 0
