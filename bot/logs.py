"""Logging for every ``resetbot`` command: one format, the request's correlation id, and redaction.

Why it is built this way:

- **One correlation id per Slack request.** The bolt middleware binds it in a ``ContextVar``; a filter on the
  handlers stamps it on every record logged while that request is handled, whichever library logs. bolt runs
  listeners in a thread pool, and a ``ContextVar`` does not cross threads by itself, so the app's listener
  executor (``ContextExecutor``) runs each listener in a copy of the submitting thread's context: the reset that
  runs after an approval logs under the approval's id, the same one an error sentence quotes to the person.
- **Redaction in front of every handler, not at the call sites.** Libraries (slack_sdk, msal, httpx) log
  request bodies and headers at DEBUG; no review of our own log calls can catch those. ``RedactingFilter``
  rewrites the message, the arguments, the traceback, the stack and every ``extra`` field of each record before
  any handler formats it: registered secrets (every ``SecretStr`` setting, every temporary password while this
  process holds it) and anything shaped like a credential (Slack tokens, bearer tokens, JWTs, private keys,
  ``password=``-style pairs, a password inside a URL).
- **A registry, not a scan for "password-looking" text.** Generated passwords look like nothing in particular;
  only knowing them catches them. The registry holds a secret only as long as this process does (a password
  is forgotten once sealed; entries given a lifetime expire), so it never grows without bound.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar, Token
from enum import StrEnum
from typing import IO, ParamSpec, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretBytes, SecretStr
from pythonjsonlogger.json import JsonFormatter

#: What a redacted secret becomes in a log line.
REDACTED = "[REDACTED]"

#: Registered secrets shorter than this are not redacted: masking every "abc" in every line would make logs
#: unreadable, and no credential the bot holds or makes is that short.
MIN_SECRET_LENGTH = 6

#: The longest a secret this process made (a temporary password, a TAP) is searched for when nobody forgets it
#: sooner: longer than any reset takes (Graph's operation is polled for a minute at most, retries included).
HELD_SECRET_TTL_S = 15 * 60
#: How long an unsealed password is searched for: the reveal modal is on its way to Slack within this.
REVEALED_SECRET_TTL_S = 120

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
#: The JSON line's fields besides the message; extras (``correlation_id`` while a request is handled) follow.
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LogFormat(StrEnum):
    """``text``: one readable line per record. ``json``: one JSON object per line, for log shippers."""

    TEXT = "text"
    JSON = "json"


# --- correlation ids ----------------------------------------------------------------------------------------

_correlation: ContextVar[str | None] = ContextVar("resetbot_correlation_id", default=None)


def bind_correlation(correlation_id: str) -> Token[str | None]:
    """Make ``correlation_id`` the current one in this context; undo with ``unbind_correlation``."""
    return _correlation.set(correlation_id)


def unbind_correlation(token: Token[str | None]) -> None:
    _correlation.reset(token)


def current_correlation() -> str | None:
    return _correlation.get()


class CorrelationFilter(logging.Filter):
    """Stamps ``correlation_id`` on records logged while a request is handled (an explicit ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            cid = _correlation.get()
            if cid is not None:
                record.correlation_id = cid
        return True


_P = ParamSpec("_P")
_T = TypeVar("_T")


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's ``contextvars`` context, so work a request
    hands to another thread still logs under that request's correlation id."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        context = contextvars.copy_context()

        def in_context() -> _T:
            return context.run(fn, *args, **kwargs)

        return super().submit(in_context)


# --- redaction ----------------------------------------------------------------------------------------------

_VALUE = r"(\"[^\"]*\"|'[^']*'|[^\s\"'&,;)}\]]+)"
#: Key names whose value is a credential: ``password``, ``client_secret``, ``access_token``, ``token_cache_key``...
_CREDENTIAL_NAME = r"(?:\w*?(?:password|passwd|pwd|secret|token|api_?key|assertion|credential|authorization)|\w+_key)"
_KEY_VALUE = re.compile(rf"(?i)\b({_CREDENTIAL_NAME}[\"']?\s*[:=]\s*){_VALUE}")
_CREDENTIAL_KEY = re.compile(rf"(?i){_CREDENTIAL_NAME}")

#: Credential shapes, redacted whether or not anyone registered them: (pattern, replacement).
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S), REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),  # a JWT
    (re.compile(r"x(?:ox[a-z](?:\.xox[a-z])?|app)-[A-Za-z0-9-]+"), REDACTED),  # Slack tokens, rotating ones too
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), rf"\1{REDACTED}@"),  # user:password@host
    (_KEY_VALUE, rf"\1{REDACTED}"),
)


def _variants(secret: str) -> set[str]:
    """The secret as it may be written: raw, JSON- or repr-escaped (a traceback, a dict), URL-encoded (a form)."""
    return {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}


class SecretRegistry:
    """The secrets this process holds right now, each until forgotten or until its lifetime ends. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float | None] = {}
        self._pattern: re.Pattern[str] | None = None
        self._dirty = False
        self._next_expiry: float | None = None

    def remember(self, secret: str | SecretStr | SecretBytes | None, *, ttl: float | None = None) -> None:
        """Redact ``secret`` from every log line, for ``ttl`` seconds or (None) until ``forget``."""
        value = _plain(secret)
        if value is None or len(value) < MIN_SECRET_LENGTH:
            return
        until = None if ttl is None else self._clock() + ttl
        with self._lock:
            if value in self._until:
                previous = self._until[value]
                # A secret remembered for good stays so; otherwise the later end wins.
                if previous is None or (until is not None and until <= previous):
                    return
            self._until[value] = until
            self._dirty = True
            if until is not None:
                self._next_expiry = until if self._next_expiry is None else min(self._next_expiry, until)

    def forget(self, secret: str | SecretStr | SecretBytes | None) -> None:
        value = _plain(secret)
        if value is None:
            return
        with self._lock:
            if value in self._until:
                del self._until[value]
                self._dirty = True

    def remember_fields(self, model: BaseModel) -> None:
        """Every ``SecretStr`` value of a settings model (lists of them too), for the life of the process."""
        for name in type(model).model_fields:
            value = getattr(model, name)
            for item in value if isinstance(value, list | tuple) else (value,):
                if isinstance(item, SecretStr | SecretBytes):
                    self.remember(item)

    def __contains__(self, secret: object) -> bool:
        self._prune()
        with self._lock:
            return secret in self._until

    def pattern(self) -> re.Pattern[str] | None:
        """One alternation of every variant of every live secret, longest first; None when there are none."""
        self._prune()
        with self._lock:
            if self._dirty:
                variants = {v for s in self._until for v in _variants(s) if len(v) >= MIN_SECRET_LENGTH}
                ordered = sorted(variants, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                self._dirty = False
            return self._pattern

    def _prune(self) -> None:
        """Drop the secrets whose lifetime ended (cheap while none is due)."""
        now = self._clock()
        with self._lock:
            if self._next_expiry is None or now < self._next_expiry:
                return
            for s in [s for s, until in self._until.items() if until is not None and until <= now]:
                del self._until[s]
            self._next_expiry = min((t for t in self._until.values() if t is not None), default=None)
            self._dirty = True


def _plain(secret: str | SecretStr | SecretBytes | None) -> str | None:
    if secret is None:
        return None
    if isinstance(secret, SecretStr):
        return secret.get_secret_value()
    if isinstance(secret, SecretBytes):
        return secret.get_secret_value().decode("utf-8", "replace")
    return secret


#: The process-wide registry: settings register their secrets, the password generator each password it makes.
SECRETS = SecretRegistry()


def remember_secret(secret: str | SecretStr | SecretBytes | None, *, ttl: float | None = None) -> None:
    """Keep ``secret`` out of every log line of this process (see ``SecretRegistry.remember``)."""
    SECRETS.remember(secret, ttl=ttl)


def forget_secret(secret: str | SecretStr | SecretBytes | None) -> None:
    """This process no longer holds ``secret`` (it was sealed, or wiped): stop searching for it."""
    SECRETS.forget(secret)


class Redactor:
    """Turns any text into the same text without a secret in it."""

    def __init__(self, registry: SecretRegistry = SECRETS) -> None:
        self.registry = registry

    def redact(self, text: str) -> str:
        """Registered secrets whole (before a shape could mask just part of one), credential shapes, then the
        registered ones again until none is left: a replacement can, with what surrounds it, spell a secret again
        (``[REDACTED]`` next to ``ab`` holds ``TED]ab``)."""
        known = self.registry.pattern()
        if known is not None:
            text = known.sub(REDACTED, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        if known is None:
            return text
        for _ in range(4):
            text, found = known.subn(REDACTED, text)
            if not found:
                return text
        return REDACTED if known.search(text) else text

    def scrub(self, value: object, *, depth: int = 0) -> object:
        """A value for a log field: strings redacted, containers walked (a credential-named key's value
        masked whole), numbers kept, anything else by its redacted ``str``."""
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, SecretStr | SecretBytes):
            return REDACTED
        if depth > 8:
            return REDACTED
        if isinstance(value, Mapping):
            return {self.redact(str(k)): REDACTED if _CREDENTIAL_KEY.fullmatch(str(k)) and v else
                    self.scrub(v, depth=depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(v, depth=depth + 1) for v in value]
        return self.redact(str(value))


#: Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "correlation_id", "taskName"}


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so that no handler, whatever its format, can write a secret: the message
    with its arguments merged, the traceback (formatted here, then dropped), the stack, and every extra field."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: still log it, arguments included, but redacted
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None  # a handler would format it again, from the raw exception
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, REDACTED if _CREDENTIAL_KEY.fullmatch(key) and value
                        else self.redactor.scrub(value))
        return True


_TRACEBACKS = logging.Formatter()


# --- set-up -------------------------------------------------------------------------------------------------

_OURS = "_resetbot_handler"


def make_handler(fmt: LogFormat | str = LogFormat.TEXT, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler with the correlation and redaction filters and the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter
    if LogFormat(fmt) == LogFormat.JSON:
        formatter = JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level",
                                                              "name": "logger", "exc_info": "exception"},
                                  json_ensure_ascii=False)
    else:
        formatter = logging.Formatter(TEXT_FORMAT, defaults={"correlation_id": "-"})
    handler.setFormatter(formatter)
    protect(handler)
    setattr(handler, _OURS, True)
    return handler


def protect(handler: logging.Handler) -> None:
    """Put the correlation and redaction filters on ``handler`` (once)."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(CorrelationFilter())
        handler.addFilter(RedactingFilter())


def configure(*, level: str | int = "INFO", fmt: LogFormat | str = LogFormat.TEXT,
              stream: IO[str] | None = None) -> logging.Handler:
    """Root logging for a command: our handler replaces any previous one of ours, and every other root handler
    (one a host process added) gets the same filters, so no path to a log skips redaction."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = make_handler(fmt, stream)
    root.addHandler(handler)
    for other in root.handlers:
        protect(other)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler
