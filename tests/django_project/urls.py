"""Only the admin: ``/admin/login/``, ``/admin/`` (needs a staff login), ``/admin/logout/``."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
