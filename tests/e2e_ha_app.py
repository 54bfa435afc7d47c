"""``tests.e2e_ha_app:app``: the vulnerable example app, bare, for gunicorn with fixguard's hooks.

Like :mod:`tests.e2e_app` in ``bare`` mode — the example's server-side sessions
in the tests' single Redis, shared by every worker — but configured by
``HA_E2E_REDIS_URL`` and ``HA_E2E_PREFIX`` only, since every ``FIXGUARD_*``
variable belongs to the hooks (they refuse one that is not a setting).
fixguard itself comes from ``examples/gunicorn.conf.py``.
"""

from __future__ import annotations

import os

from examples import basic_auth_app

from .e2e_app import RedisSessions, WorkerPid, lazy_app, redis_client


def create_app() -> WorkerPid:
    url, prefix = os.environ["HA_E2E_REDIS_URL"], os.environ["HA_E2E_PREFIX"]
    flask_app = basic_auth_app.create_app()
    client = redis_client(url)
    flask_app.session_interface = basic_auth_app.DictSessionInterface(
        RedisSessions(client, prefix + "app:")  # type: ignore[arg-type]
    )
    return WorkerPid(flask_app, client, prefix)


__getattr__ = lazy_app(create_app)
