"""A Django JSON API with the bearer seed's flaw, for the compressed-login tests.

``POST /api/login`` checks alice's password and answers her token in JSON; a
client that arrived with ``Authorization: Bearer <token>`` keeps that token
(the flaw: whoever chose it is logged in too). ``GET /api/me`` names the
token's user. The answer carries the user's profile, as real login answers
do, which makes it long enough for ``GZipMiddleware`` to compress it every
time: Django leaves bodies under 200 bytes alone, and adds up to 100 random
bytes to each gzip stream (sending the body uncompressed when that is not
shorter). Used with ``django_app``'s configuration, under
``override_settings`` with this module as ``ROOT_URLCONF`` and
``GZipMiddleware`` as the only middleware.
"""

from __future__ import annotations

import json
import secrets

from django.http import HttpRequest, JsonResponse
from django.urls import path

from . import ALICE_PASSWORD

#: token -> user, as the app binds them.
TOKENS: dict[str, str] = {}

PROFILE = {
    "display_name": "Alice Liddell",
    "email": "alice@example.test",
    "roles": ["reader", "writer"],
    "preferences": {"theme": "dark", "language": "en-GB", "timezone": "Europe/London"},
    "permissions": [f"{area}.{verb}" for area in ("posts", "comments", "media", "users", "settings")
                    for verb in ("view", "add", "change", "delete")],
}


def _presented(request: HttpRequest) -> str | None:
    words = request.headers.get("Authorization", "").split()
    return words[1] if len(words) == 2 and words[0].lower() == "bearer" else None


def login(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        data = {}
    if data.get("username") != "alice" or data.get("password") != ALICE_PASSWORD:
        return JsonResponse({"error": "invalid credentials"}, status=401)
    token = _presented(request) or secrets.token_urlsafe(32)  # THE BUG: a presented token is kept
    TOKENS[token] = "alice"
    return JsonResponse({"access_token": token, "token_type": "Bearer", "profile": PROFILE})


def me(request: HttpRequest) -> JsonResponse:
    user = TOKENS.get(_presented(request) or "")
    if user is None:
        return JsonResponse({"error": "missing token"}, status=401)
    return JsonResponse({"user": user, "profile": PROFILE})


urlpatterns = [path("api/login", login), path("api/me", me)]
