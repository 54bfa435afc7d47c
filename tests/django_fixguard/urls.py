"""Django's own login and admin, plus a login view with the classic bug (no ``cycle_key``)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"profile of {request.user.get_username()}", content_type="text/plain")


def index(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(f"visits={request.session['visits']}", content_type="text/plain")


@csrf_exempt
def weak_login(request: HttpRequest) -> HttpResponse:
    """Writes the user into whatever session the request carried: fixation, when bare."""
    if request.method != "POST" or request.POST.get("password") != "secret":
        return HttpResponse("bad credentials", status=401, content_type="text/plain")
    request.session["user"] = request.POST.get("user", "alice")
    return HttpResponse("welcome", content_type="text/plain")


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.session.get("user")
    if user is None:
        return HttpResponse("anonymous", status=401, content_type="text/plain")
    return HttpResponse(f"user={user}", content_type="text/plain")


def signal_login(request: HttpRequest) -> HttpResponse:
    import fixguard

    fixguard.signal(request.environ, "login", subject="alice")
    return HttpResponse("signalled", content_type="text/plain")


urlpatterns = [
    path("", index),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view()),
    path("profile/", profile),
    path("weak-login/", weak_login),
    path("whoami/", whoami),
    path("signal-login/", signal_login),
]
