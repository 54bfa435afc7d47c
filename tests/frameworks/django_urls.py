"""URLs and views of the Django app (imported by Django once ``django_app`` configured it)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def index(request: HttpRequest) -> HttpResponse:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    who = request.user.get_username() if request.user.is_authenticated else "anonymous"
    return HttpResponse(f"visits={visits} user={who}", content_type="text/plain")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"profile of {request.user.get_username()}", content_type="text/plain")


@csrf_exempt
def handmade_login(request: HttpRequest) -> HttpResponse:
    """A hand-written login that forgets ``cycle_key()``: the classic fixation bug, in Django."""
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return HttpResponse("bad credentials", status=401, content_type="text/plain")
    request.session["handmade_user"] = user.get_username()  # same session key as before login
    return HttpResponse("welcome", content_type="text/plain")


def handmade_profile(request: HttpRequest) -> HttpResponse:
    user = request.session.get("handmade_user")
    if user is None:
        return HttpResponse("anonymous", status=401, content_type="text/plain")
    return HttpResponse(f"profile of {user}", content_type="text/plain")


urlpatterns = [
    path("handmade/login", handmade_login),
    path("handmade/profile", handmade_profile),
    path("", index),
    path("login/", LoginView.as_view()),
    path("logout/", LogoutView.as_view()),
    path("profile", profile),
]
