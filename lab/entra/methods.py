"""Graph calls that set or take away credentials: resetPassword and its operations, PATCH passwordProfile, TAPs
(created, listed, deleted), and revokeSignInSessions.

resetPassword accepts only a delegated token whose user holds an Entra role that may reset the target
(roles.py); synced users go to the writeback agent, whose AD verdict becomes the operation's outcome.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from typing import Any

from aiohttp import web

from lab.entra import config, roles
from lab.entra.directory import EntraUser, TemporaryAccessPass
from lab.entra.graphbase import (
    PASSWORD_PROFILE,
    READ_OPERATION,
    RESET,
    REVOKE_SESSIONS,
    WRITE_METHODS,
    GraphRoutes,
    Refusal,
    caller_of,
)
from lab.entra.operations import Operation
from lab.entra.passwords import banned_word, cloud_complex_enough, generate_cloud_password
from lab.entra.wire import bad_request, graph_empty, graph_error, graph_json, not_found, utcnow
from lab.entra.writeback import Outcome

#: statusDetail of operations failed by the writeback fault switches (the agent's own are in writeback.py).
DETAIL_WRITEBACK_DISABLED = ("SSPR_0010: Password writeback is not enabled for this tenant, so the password of an "
                             "on-premises synchronized user cannot be reset in the cloud. The password was not "
                             "changed.")
DETAIL_AGENT_OFFLINE = ("SSPR_0030: The on-premises writeback agent did not answer (event 31034: the relay could "
                        "not reach the Entra Connect server). The password was not changed.")

MSG_BANNED = ("The specified password contains words or characters that have been blocked by your administrator "
              "(Microsoft Entra Password Protection). Please provide a different password.")
MSG_CLOUD_COMPLEXITY = ("The specified password does not comply with password complexity requirements. Please "
                        "provide a different password.")
MSG_ONPREM_MASTERED = ("Unable to update the specified properties for on-premises mastered Directory Sync objects "
                       "or objects currently undergoing migration.")

_TAP_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!@#$%*+="


class Methods(GraphRoutes):
    """The routes that change a password or create a Temporary Access Pass."""

    def routes(self) -> list[web.RouteDef]:
        u = "/v1.0/users/{user}"
        return [
            web.patch(u, self.patch_user),
            web.post(u + "/authentication/methods/{method}/resetPassword", self.reset_password),
            web.get(u + "/authentication/operations/{operation}", self.get_operation),
            web.post(u + "/authentication/temporaryAccessPassMethods", self.create_tap),
            web.get(u + "/authentication/temporaryAccessPassMethods", self.list_taps),
            web.delete(u + "/authentication/temporaryAccessPassMethods/{tap}", self.delete_tap),
            web.post(u + "/revokeSignInSessions", self.revoke_sessions),
        ]

    async def patch_user(self, request: web.Request) -> web.Response:
        """PATCH passwordProfile: app-only, cloud-only users, non-admin targets (the lab's app holds no admin
        role, which Microsoft requires for admin targets)."""
        caller = caller_of(request)
        self._require(request, not caller.delegated and caller.allowed(PASSWORD_PROFILE))
        target = self._target(request)
        body = await self._json_object(request)
        if target.synced:
            raise Refusal(bad_request(request, MSG_ONPREM_MASTERED))
        if set(body) != {"passwordProfile"}:
            raise Refusal(bad_request(request, "The lab stand-in updates only passwordProfile."))
        # Password Administrator's reach is exactly "no admin role": the lab's app holds no admin role.
        self._require(request, roles.may_reset({roles.PASSWORD_ADMIN}, self.s.held_roles(target)))
        profile = body["passwordProfile"]
        password = profile.get("password") if isinstance(profile, dict) else None
        if not isinstance(password, str) or not password:
            raise Refusal(bad_request(request, "Invalid value specified for property 'passwordProfile' of resource "
                                      "'User'."))
        self._cloud_policy(request, password, cloud_only=True)
        target.last_password_change = utcnow()
        target.force_change_next_sign_in = bool(profile.get("forceChangePasswordNextSignIn", True))
        return graph_empty(request, 204)

    @staticmethod
    def _cloud_policy(request: web.Request, password: str, *, cloud_only: bool) -> None:
        """Entra's own checks, before anything goes on-prem: Password Protection's banned words for everyone,
        the cloud complexity rule for cloud-only users (synced users get AD's policy instead)."""
        if banned_word(password):
            raise Refusal(bad_request(request, MSG_BANNED))
        if cloud_only and not cloud_complex_enough(password):
            raise Refusal(bad_request(request, MSG_CLOUD_COMPLEXITY))

    # -- resetPassword ----------------------------------------------------------------------------------
    async def reset_password(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        # Application permissions are not supported for resetPassword: only a delegated token will do.
        self._require(request, caller.user is not None and caller.allowed(RESET))
        assert caller.user is not None
        target = self._target(request)
        if request.match_info["method"].lower() != config.PASSWORD_METHOD_ID:
            raise Refusal(not_found(request, request.match_info["method"]))
        if target is caller.user:
            raise Refusal(graph_error(request, 403, "Authorization_RequestDenied",
                                      "Insufficient privileges to complete the operation. (resetPassword cannot "
                                      "be used on the caller's own account.)"))
        self._require(request, roles.may_reset(caller.roles, self.s.held_roles(target)))
        body = await self._json_object(request)
        password = body.get("newPassword")
        generated = password is None and not target.synced
        if generated:
            password = generate_cloud_password()
        if not isinstance(password, str) or not password:
            raise Refusal(bad_request(request, "The newPassword property is required for users whose password is "
                                      "managed on-premises.", code="badRequest"))
        self._cloud_policy(request, password, cloud_only=not target.synced)
        op = Operation(user_id=target.id, upn=target.person.upn, caller=caller.user.person.upn,
                       app_id=caller.app_id, synced=target.synced)
        self.s.operations[op.id] = op
        self.s.spawn(self._run_reset(op, target, password))
        location = f"{self.s.graph_base}/users/{target.id}/authentication/operations/{op.id}"
        headers = {"Location": location, **self.s.faults.reset_retry_after_header()}
        return graph_json(request, {"newPassword": password} if generated else {}, status=202, headers=headers)

    async def _run_reset(self, op: Operation, target: EntraUser, password: str) -> None:
        """The operation's life. The password lives only in this coroutine and the agent call. A held operation
        waits ``running`` before anything else, and then meets the faults as they are at its release."""
        op.move("running")
        if self.s.faults.hold_operations:
            op.held = True
            kept = await self.s.hold()
            op.held = False
            if not kept:
                return  # dropped by a lab reset: gone from the operations, AD never hears of it
        faults = self.s.faults
        if not target.synced:
            outcome = Outcome(True)
            target.force_change_next_sign_in = True
        elif faults.writeback == "disabled":
            outcome = Outcome(False, DETAIL_WRITEBACK_DISABLED)
        elif faults.writeback == "offline":
            await asyncio.sleep(faults.offline_delay_ms / 1000)
            outcome = Outcome(False, DETAIL_AGENT_OFFLINE)
        elif faults.writeback == "lost":
            outcome = Outcome(True)  # the cloud says yes; AD never hears of it
        else:
            async with self.s.writeback_lock:
                outcome = await asyncio.to_thread(self.s.agent.reset, target.person, password)
        del password
        if outcome.succeeded:
            target.last_password_change = utcnow()
        op.move("succeeded" if outcome.succeeded else "failed", outcome.detail)

    async def get_operation(self, request: web.Request) -> web.Response:
        self._require(request, caller_of(request).allowed(READ_OPERATION))
        target = self._target(request)
        op = self.s.operations.get(request.match_info["operation"])
        if op is None or op.user_id != target.id:
            raise Refusal(not_found(request, request.match_info["operation"]))
        return graph_json(request, op.as_graph(self.s.graph_base, config.PASSWORD_METHOD_ID))

    # -- Temporary Access Pass --------------------------------------------------------------------------
    async def create_tap(self, request: web.Request) -> web.Response:
        caller = caller_of(request)
        self._require(request, caller.allowed(WRITE_METHODS))
        target = self._target(request)
        if caller.user is not None:
            self._require(request, caller.user is not target
                          and roles.may_create_tap(caller.roles, self.s.held_roles(target)))
        body = await self._json_object(request)
        lifetime = body.get("lifetimeInMinutes", 60)
        once = body.get("isUsableOnce", False)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 10 <= lifetime <= 43200:
            raise Refusal(bad_request(request, "lifetimeInMinutes must be between 10 and 43200.", code="badRequest"))
        if not isinstance(once, bool):
            raise Refusal(bad_request(request, "isUsableOnce must be a boolean.", code="badRequest"))
        now = utcnow()
        tap = TemporaryAccessPass(id=str(uuid.uuid4()), created=now, start=self._tap_start(request, body, now),
                                  lifetime_minutes=lifetime, usable_once=once)
        target.taps = [tap]  # one usable TAP per user: a new one replaces the old
        value = "".join(secrets.choice(_TAP_CHARS) for _ in range(8))
        body_out = {
            "@odata.context": f"{self.s.graph_base}/$metadata#users('{target.id}')/authentication/"
                              "temporaryAccessPassMethods/$entity",
            **tap.as_json(now),
            "temporaryAccessPass": value,
        }
        location = f"{self.s.graph_base}/users/{target.id}/authentication/temporaryAccessPassMethods/{tap.id}"
        return graph_json(request, body_out, status=201, headers={"Location": location})

    @staticmethod
    def _tap_start(request: web.Request, body: dict[str, Any], now: dt.datetime) -> dt.datetime:
        if body.get("startDateTime") is None:
            return now
        try:
            start = dt.datetime.fromisoformat(str(body["startDateTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise Refusal(bad_request(request, "startDateTime is not a valid DateTimeOffset.",
                                      code="badRequest")) from None
        return start if start.tzinfo else start.replace(tzinfo=dt.UTC)

    async def list_taps(self, request: web.Request) -> web.Response:
        """GET a user's Temporary Access Passes: ``UserAuthenticationMethod.Read.All`` (or ReadWrite.All), and,
        delegated on another user, a role that may read them (roles.may_read_taps); one's own need no role. At most
        one, as Graph holds (a new pass replaces the old); never its value (``temporaryAccessPass`` is null)."""
        caller = caller_of(request)
        self._require(request, caller.allowed(READ_OPERATION))
        target = self._target(request)
        if caller.user is not None and caller.user is not target:
            self._require(request, roles.may_read_taps(caller.roles, self.s.held_roles(target)))
        now = utcnow()
        return graph_json(request, {
            "@odata.context": f"{self.s.graph_base}/$metadata#users('{target.id}')/authentication/"
                              "temporaryAccessPassMethods",
            "value": [t.as_json(now) for t in target.taps],
        })


    async def delete_tap(self, request: web.Request) -> web.Response:
        """DELETE a Temporary Access Pass: the same permission and role as creating one (an authentication method is
        managed by the authentication administrators, over the targets their column covers); an app needs
        ``UserAuthenticationMethod.ReadWrite.All``, which the lab's app is not consented for. 404 when the pass is
        not (or no longer) the user's."""
        caller = caller_of(request)
        self._require(request, caller.allowed(WRITE_METHODS))
        target = self._target(request)
        if caller.user is not None and caller.user is not target:
            self._require(request, roles.may_create_tap(caller.roles, target.held_roles))
        tap_id = request.match_info["tap"]
        kept = [t for t in target.taps if t.id != tap_id]
        if len(kept) == len(target.taps):
            raise Refusal(not_found(request, tap_id))
        target.taps = kept
        return graph_empty(request, 204)

    async def revoke_sessions(self, request: web.Request) -> web.Response:
        """POST revokeSignInSessions: ``signInSessionsValidFromDateTime`` becomes now, and Graph answers
        ``{"value": true}``. Delegated on another user: the caller's active role must hold
        ``invalidateAllRefreshTokens`` over the target (roles.may_revoke_sessions: not the Password Administrator);
        one's own sessions need no role. App-only: ``User.RevokeSessions.All`` (not consented for the lab's app)."""
        caller = caller_of(request)
        self._require(request, caller.allowed(REVOKE_SESSIONS))
        target = self._target(request)
        if caller.user is not None and caller.user is not target:
            self._require(request, roles.may_revoke_sessions(caller.roles, target.held_roles))
        target.sign_in_sessions_valid_from = utcnow()
        target.revocations += 1
        return graph_json(request, {"@odata.context": f"{self.s.graph_base}/$metadata#Edm.Boolean", "value": True})
