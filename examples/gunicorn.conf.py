"""gunicorn configuration that puts fixguard in front of an app you do not change.

::

    export FIXGUARD_SECRET_KEY=$(python -c "import secrets; print(secrets.token_urlsafe(48))")
    export FIXGUARD_APP_COOKIES=session FIXGUARD_LOGIN="POST /login" FIXGUARD_LOGOUT="POST /logout"
    export FIXGUARD_REDIS_URL=redis://127.0.0.1:6379/0      # needed for more than one worker
    gunicorn -c examples/gunicorn.conf.py -w 4 yourapp:app

or put the settings in the ``[fixguard]`` table of a TOML file and
``export FIXGUARD_CONFIG=/etc/fixguard.toml`` (variables still override it).
See "Deploy with gunicorn" in the README.

The hooks come from :mod:`fixguard.gunicorn`: ``on_starting`` checks the
configuration in the master and refuses several workers without Redis;
``post_worker_init`` wraps each worker's app; ``nworkers_changed`` keeps a
server without Redis at one worker. If your own config file has hooks of the
same name, call these from yours.
"""

from fixguard.gunicorn import nworkers_changed, on_starting, post_worker_init

__all__ = ["nworkers_changed", "on_starting", "post_worker_init"]

# Everything else (bind, workers, threads, timeouts, logging) is ordinary gunicorn
# configuration: give it on the command line or add it here.
