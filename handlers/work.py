"""The ack path and the work pool: Slack hears "got it" within milliseconds, whatever else the bot is doing.

Slack's 3 seconds to acknowledge are hard: a command not acked in time shows the person an error, and Slack sends
it again. So every listener is wrapped by ``on_ack_path``: on the thread that received the request it only acks
(with an answer, when one is known without any I/O: help, a usage line, a form error), then hands the work
(Graph, AD, the database, Web API calls) to a **bounded** pool, ``WorkPool``, and returns. bolt runs the wrapper
with ``process_before_response=True`` (bot/app.py), so the ack is sent as soon as it returns, from the thread
that received the envelope or the HTTP request, without waiting for a free listener thread and without bolt's
10 ms polling for ``ack()``.

Why an executor of ours rather than bolt's lazy listeners (slack-bolt 1.30): bolt's ``ThreadLazyListenerRunner``
submits every lazy function to the app's one ``listener_executor``, the very pool that (with
``process_before_response=False``) also runs the ack functions, so acks queue behind work again; its queue is
unbounded, so an overloaded bot never says "busy", it only gets later; and a lazy function's exception is logged
by bolt (``Failed to run an internal function``) and never reaches ``app.error``, so the person would hear
nothing. Here the pool is bounded, refusal is immediate and explicit, and every failure goes to the one error
handler (handlers/errors.py) with the request's correlation id.

The pool has lanes, so that slow work never delays work that must be quick:

- ``Lane.MODAL``: listeners that open a modal (Deny's reason, Reveal). ``views.open`` needs the click's
  ``trigger_id`` within 3 s, so these never wait behind a reset or a burst of ``/reset``; their work is one
  database read and one Web API call. A task that only starts after ``MODAL_STALE_AFTER_S`` (the trigger would be
  spent by the time ``views.open`` reached Slack) tells the person the bot is busy instead.
- ``Lane.DECISION``: Approve and the target's confirmation, which may start a reset afterwards: up to Graph's
  202, after which the one operation poller (``bot.services.operation_poller``) follows it to its verdict, so no
  thread of this lane waits for Graph. Ten resets held by Graph do not stop anybody's ``/reset`` from being
  answered.
- ``Lane.WORK``: everything else (commands, Cancel, the deny reason, "This wasn't me", App Home).

When a lane is full (its threads busy and its queue at ``queue``), the person is told at once, in one sentence
(``messages.errors.busy``), and nothing was started: a slash command hears it in the ack itself, a form in the
ack's field error, a click through its response URL (from a small notice thread: the ack never waits for Slack).
An App Home opening is only logged: nobody asked for anything, and the next opening redraws it. Each refusal is
logged once, with the correlation id. Sizes: ``DEFAULT_LANES`` (the queue of ``WORK`` holds a Monday burst of a
few hundred commands; a person whose command waits that long is still answered through the response URL, valid
30 minutes).

Why ``WORK`` has three threads, not ten: every ack is Python too (Socket Mode's receiving thread, its dispatcher,
the bolt listener), and each of those steps waits for the GIL behind every work thread that is running Python
(parsing, SQLAlchemy, ldap3's encoding, the Web API client), a switch interval (5 ms) per thread ahead of it. In a
burst of ``/reset`` (``bench/ack_burst.py``, closed loop, 20 clients) the time from an envelope's arrival in the
process to its ack, at the 99th percentile, was 150-230 ms with ten work threads and four, 60-110 ms with three or
two; the ack p99 seen by Slack went from 1.6-4.4x the bare bolt app's to 0.9-1.4x. A lower switch interval (1 ms)
and freezing the start-up heap alone did not move it. What three threads give up is concurrency for work that
waits on Graph, AD or Slack (the GIL is free then): a burst drains more slowly, and each command is still answered;
``RESETBOT_WORK_THREADS`` raises it where that matters more.

Stopping: ``wait_idle`` says when everything admitted has run (``bot.serve`` drains it), ``shutdown`` refuses
what comes after (refused work is told "busy", so Slack's retry or the person's goes to another replica).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import messages
from bot.logs import ContextExecutor
from bot.services.replay import WORK_MAY_WAIT
from handlers.context import REPLAY_CHECK_KEY, correlation_of
from handlers.errors import handle_error

log = logging.getLogger("resetbot.work")


class Lane(StrEnum):
    """Which part of the pool a listener's work runs in (see the module's docstring)."""

    MODAL = "modal"
    DECISION = "decision"
    WORK = "work"


@dataclass(frozen=True, slots=True)
class LaneSize:
    """``threads`` run at once; up to ``queue`` more wait; past that the person is told the bot is busy."""

    threads: int
    queue: int

    def __post_init__(self) -> None:
        if self.threads < 1 or self.queue < 0:
            raise ValueError(f"a lane needs at least one thread and a queue of 0 or more, not {self}")


DEFAULT_LANES: Mapping[Lane, LaneSize] = {
    Lane.MODAL: LaneSize(threads=4, queue=8),
    Lane.DECISION: LaneSize(threads=10, queue=100),
    Lane.WORK: LaneSize(threads=3, queue=400),  # three: see the module's docstring (the acks' GIL)
}
def work_lanes(threads: int) -> Mapping[Lane, LaneSize]:
    """The default lanes with ``threads`` in ``WORK`` (``RESETBOT_WORK_THREADS``)."""
    return {**DEFAULT_LANES, Lane.WORK: LaneSize(threads=threads, queue=DEFAULT_LANES[Lane.WORK].queue)}


#: Threads telling people "busy" (one Web API call each) and how many such notices may wait.
NOTICE_THREADS = 2
NOTICE_QUEUE = 200
#: A modal's work started later than this after the click would reach ``views.open`` with a spent trigger_id
#: (valid 3 s): it tells the person "busy" instead.
MODAL_STALE_AFTER_S = 2.0
#: Work that waited longer than this in any lane is not run: the person is told "busy" (a command's response URL
#: still reaches them), because the replay guard's memory across replicas is sized to it (``WORK_MAY_WAIT``).
WORK_MAY_WAIT_S = WORK_MAY_WAIT.total_seconds()


class WorkPool:
    """Bounded lanes of worker threads; ``offer`` never blocks. Each task runs in a copy of the offering thread's
    ``contextvars`` (``ContextExecutor``), so its log lines carry the request's correlation id."""

    def __init__(self, lanes: Mapping[Lane, LaneSize] = DEFAULT_LANES, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        missing = set(Lane) - set(lanes)
        if missing:
            raise ValueError(f"no size given for lane(s) {', '.join(sorted(missing))}")
        self.sizes = dict(lanes)
        self.clock = clock
        self._executors = {lane: ContextExecutor(max_workers=size.threads, thread_name_prefix=f"resetbot-{lane}")
                           for lane, size in self.sizes.items()}
        self._slots = {lane: threading.BoundedSemaphore(size.threads + size.queue)
                       for lane, size in self.sizes.items()}
        self._notices = ContextExecutor(max_workers=NOTICE_THREADS, thread_name_prefix="resetbot-notice")
        self._notice_slots = threading.BoundedSemaphore(NOTICE_QUEUE + NOTICE_THREADS)
        self._lock = threading.Lock()
        self._running: set[Future[Any]] = set()

    def offer(self, lane: Lane, task: Callable[[], None]) -> bool:
        """Queue ``task`` in ``lane`` and return True, or return False at once when the lane is full or the pool
        is stopping (nothing of ``task`` has run then)."""
        return self._submit(self._executors[lane], self._slots[lane], task)

    def notify(self, task: Callable[[], None]) -> bool:
        """Run a short notice (one Web API call) off the ack path; False when even the notices are backed up."""
        return self._submit(self._notices, self._notice_slots, task)

    def _submit(self, executor: ContextExecutor, slots: threading.BoundedSemaphore, task: Callable[[], None]) -> bool:
        if not slots.acquire(blocking=False):
            return False
        try:
            future = executor.submit(task)
        except RuntimeError:  # shut down: the intake is closing
            slots.release()
            return False
        with self._lock:
            self._running.add(future)

        def done(f: Future[Any]) -> None:
            slots.release()
            with self._lock:
                self._running.discard(f)

        future.add_done_callback(done)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """True once everything admitted has run; False if something still runs (or waits) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = set(self._running)
            if not running:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # A task may admit another (an error's notice): look again until nothing is left.
            wait(running, timeout=left)

    def shutdown(self, *, wait: bool = False) -> None:
        """Refuse new work; with ``wait``, block until what was admitted has run."""
        for executor in (*self._executors.values(), self._notices):
            executor.shutdown(wait=wait)


#: The names a wrapped listener may ask bolt for; bolt gives None where one does not apply.
_ARGUMENTS = ("ack", "body", "context", "client", "respond", "command", "action", "view", "event")
AckAnswer = Callable[[dict[str, Any]], dict[str, Any] | None]


def on_ack_path(listener: Callable[..., None], lane: Lane, pool: WorkPool, *,
                answer: AckAnswer | None = None) -> Callable[..., None]:
    """A bolt listener that acks at once and runs ``listener`` in ``pool``'s ``lane``.

    ``answer`` (given the request's body, pure: no I/O) may return the ack's arguments for a request that needs
    no work at all (help, a usage line, a form error): it is acked with them and ``listener`` does not run.
    ``listener`` is called with the arguments it names, as bolt would call it, except that ``ack`` is already
    spent (calling it does nothing).
    """
    wanted = [name for name in inspect.signature(listener).parameters if name in _ARGUMENTS]
    name = getattr(listener, "__name__", "listener")

    def ack_path(ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond,
                 command: dict[str, Any] | None, action: dict[str, Any] | None, view: dict[str, Any] | None,
                 event: dict[str, Any] | None) -> None:
        given: dict[str, Any] = {"ack": _spent_ack, "body": body, "context": context, "client": client,
                                 "respond": respond, "command": command, "action": action, "view": view,
                                 "event": event}
        if answer is not None:
            answered = answer(body)
            if answered is not None:
                ack(**answered)
                return
        started_at = pool.clock()

        def work() -> None:
            try:
                if not _first_sight(context):
                    return
                waited = pool.clock() - started_at
                if lane == Lane.MODAL and waited > MODAL_STALE_AFTER_S:
                    log.warning("busy: %s waited too long in the %s lane for its trigger_id; told the person to "
                                "try again", name, lane)
                    _tell_busy_later(body, context, respond, client)
                    return
                if waited > WORK_MAY_WAIT_S:
                    log.warning("busy: %s waited over %d s in the %s lane; told the person to try again, nothing "
                                "done", name, WORK_MAY_WAIT_S, lane)
                    _tell_busy_later(body, context, respond, client)
                    return
                listener(**{k: given[k] for k in wanted})
            except Exception as error:  # the one error handler tells the person, with the correlation id
                handle_error(error, body, context, client)

        if pool.offer(lane, work):
            if ack.response is None:
                ack()
            return
        _refuse_busy(name, lane, pool, ack, body, context, respond, client, view=view, event=event)

    ack_path.__name__ = f"ack_{name}"
    ack_path.__doc__ = listener.__doc__
    return ack_path


def _first_sight(context: BoltContext) -> bool:
    """HTTP mode: whether no replica has served this request before (``bot.services.replay``: the database's
    check, run here rather than before the ack). False for a replay that reached this replica after another served
    the original: nothing of it runs. Socket Mode has no such check (Slack's own connection, no signature)."""
    check = context.get(REPLAY_CHECK_KEY)
    if check is None or check():
        return True
    log.warning("refused a replayed Slack request another replica served first; nothing done")
    return False


def _spent_ack(*_args: Any, **_kwargs: Any) -> None:
    """The request was acked on the ack path already: a listener's own ``ack()`` has nothing left to do."""


def _refuse_busy(name: str, lane: Lane, pool: WorkPool, ack: Ack, body: dict[str, Any], context: BoltContext,
                 respond: Respond, client: WebClient, *, view: dict[str, Any] | None,
                 event: dict[str, Any] | None) -> None:
    """Tell the person at once, in the ack where Slack shows one, and log the refusal once."""
    cid = correlation_of(context)
    sentence = messages.errors.busy(cid)
    user = (body.get("user") or {}).get("id") or body.get("user_id") or (event or {}).get("user")
    log.warning("busy: the %s lane is full (%d running, %d waiting at most); refused %s for %s, nothing started",
                lane, pool.sizes[lane].threads, pool.sizes[lane].queue, name, user)
    if body.get("command"):
        ack(text=sentence)  # Slack shows a command's ack text to the person who typed it, and only to them
        _remember_refused(context, pool)
        return
    if view is not None and body.get("type") == "view_submission":
        field = next(iter((view.get("state") or {}).get("values") or {}), None)
        if field is not None:
            ack(response_action="errors", errors={field: sentence})  # the modal stays open: submit again later
            _remember_refused(context, pool)
            return
    ack()
    if event is not None:
        _remember_refused(context, pool)
        return  # App Home opened: nobody is waiting for an answer; the next opening redraws it
    def notice() -> None:
        if _first_sight(context):
            _tell_busy_later(body, context, respond, client)

    if not pool.notify(notice):
        log.warning("busy: could not even queue the busy notice for %s (%s)", user, cid)
        _remember_refused(context, pool, notice=False)


def _remember_refused(context: BoltContext, pool: WorkPool, *, notice: bool = True) -> None:
    """HTTP mode: a request refused "busy" is recorded as served all the same, so that a copy of it sent to another
    replica within Slack's window is refused there too, instead of doing what the person was told was not done.
    As a notice task; never on this thread, whose return is the ack (a database write could hold it past Slack's
    3 s exactly when the bot is busiest). When even the notices are backed up it is not recorded, and logged: a copy
    sent to another replica could then run what this one refused, which Slack itself never sends (it retries
    only what was not acked)."""
    check = context.get(REPLAY_CHECK_KEY)
    if check is None:
        return

    def record() -> None:
        try:
            check()
        except Exception:
            log.exception("could not record a request refused as busy against replays")

    if not (notice and pool.notify(record)):
        log.warning("busy: could not record a refused request against replays (the notices are backed up too)")


def _tell_busy_later(body: dict[str, Any], context: BoltContext, respond: Respond, client: WebClient) -> None:
    sentence = messages.errors.busy(correlation_of(context))
    try:
        if body.get("response_url"):
            respond(text=sentence, response_type="ephemeral", replace_original=False)
            return
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        if user:
            client.chat_postMessage(channel=user, text=sentence)
    except Exception:
        log.warning("could not tell %s that the bot is busy", (body.get("user") or {}).get("id"), exc_info=True)
