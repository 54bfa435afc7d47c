"""URLs and views of the Django app (imported by Django once ``django_app`` configured it)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.urls import path


def index(request: HttpRequest) -> HttpResponse:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    who = request.user.get_username() if request.user.is_authenticated else "anonymous"
    return HttpResponse(f"visits={visits} user={who}", content_type="text/plain")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"profile of {request.user.get_username()}", content_type="text/plain")


urlpatterns = [
    path("", index),
    path("login/", LoginView.as_view()),
    path("logout/", LogoutView.as_view()),
    path("profile", profile),
]
