"""The Duo stand-in's control API (under ``/control``): how a person's next push is answered, and what was asked."""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from aiohttp import web

from lab.duo.state import ANSWERS, DEFAULT_ANSWER_DELAY_S, Answer, DuoState


class Control:
    def __init__(self, state: DuoState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/control/answer", self.answer),
            web.post("/control/press", self.press),
            web.get("/control/requests", self.requests),
            web.get("/control/pushes", self.pushes),
            web.post("/control/enrolment", self.enrolment),
        ]

    async def answer(self, request: web.Request) -> web.Response:
        """``{"username", "result": allow|deny|fraud|timeout|bypass, "delay_ms"?}``: that person's next push ends so."""
        body = await _json_object(request)
        if body is None:
            return web.json_response({"error": "a JSON object is expected"}, status=400)
        username, result = body.get("username"), body.get("result")
        if username not in self.state.enrolled:
            return web.json_response({"error": f"{username!r} is not enrolled in the lab's Duo"}, status=400)
        if result not in ANSWERS:
            return web.json_response({"error": f"result must be one of {', '.join(ANSWERS)}"}, status=400)
        delay_ms = body.get("delay_ms", DEFAULT_ANSWER_DELAY_S * 1000)
        if not isinstance(delay_ms, int | float) or isinstance(delay_ms, bool) or not 0 <= delay_ms <= 600_000:
            return web.json_response({"error": "delay_ms must be a number from 0 to 600000"}, status=400)
        self.state.answers.setdefault(username, deque()).append((cast(Answer, result), delay_ms / 1000))
        return web.json_response({"username": username, "result": result, "delay_ms": delay_ms})

    async def press(self, request: web.Request) -> web.Response:
        """``{"username", "result": allow|deny|fraud|timeout|bypass}``: the person answers their push that is still
        waiting, now (queue a long ``delay_ms`` with ``answer`` to keep it waiting until the test's moment); 409
        when none of theirs waits."""
        body = await _json_object(request)
        if body is None:
            return web.json_response({"error": "a JSON object is expected"}, status=400)
        username, result = body.get("username"), body.get("result")
        if result not in ANSWERS:
            return web.json_response({"error": f"result must be one of {', '.join(ANSWERS)}"}, status=400)
        push = self.state.press(str(username), cast(Answer, result))
        if push is None:
            return web.json_response({"error": f"no push to {username!r} is waiting"}, status=409)
        return web.json_response(push.wire())

    async def enrolment(self, request: web.Request) -> web.Response:
        """``{"username", "enrolled": bool}``: take a person's phone out of Duo (as an admin deleting it would) or
        give back the fixture's; a username the fixture does not know cannot be enrolled."""
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("enrolled"), bool):
            return web.json_response({"error": 'expected {"username", "enrolled": true|false}'}, status=400)
        username = body.get("username")
        device = self.state.fixture_devices.get(str(username))
        if device is None:
            return web.json_response({"error": f"{username!r} is not a person the lab's Duo knows"}, status=400)
        if body["enrolled"]:
            self.state.enrolled[str(username)] = device
        else:
            self.state.enrolled.pop(str(username), None)
        return web.json_response({"username": username, "enrolled": body["enrolled"]})

    async def requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.requests)

    async def pushes(self, request: web.Request) -> web.Response:
        username = request.query.get("username")
        return web.json_response([p.wire() for p in self.state.pushes.values()
                                  if username is None or p.username == username])


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON body when it is an object; None otherwise (the caller answers 400)."""
    try:
        body: Any = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
