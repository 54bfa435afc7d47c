"""gunicorn configuration: fixguard in front of the app, events in the error log, metrics at /metrics.

::

    pip install 'fixguard[redis,prometheus]'
    export FIXGUARD_SECRET_KEY=… FIXGUARD_REDIS_URL=redis://127.0.0.1:6379/0 …   # as for gunicorn.conf.py
    export PROMETHEUS_MULTIPROC_DIR=/run/yourapp-metrics    # an empty directory, before gunicorn starts
    gunicorn -c examples/gunicorn_observed.conf.py -w 4 yourapp:app

Everything of ``gunicorn.conf.py``, plus, in each worker once fixguard wraps the app:

* fixguard's security events go to gunicorn's error log (``--error-logfile``,
  stderr or syslog, whichever gunicorn uses), at INFO and above;
* :mod:`fixguard.contrib.prometheus` counts them, with refusals, store latency
  and settle waits, and ``GET /metrics`` shows the sum over every worker
  (prometheus_client's multiprocess mode). ``/metrics`` is answered before
  fixguard and the app: keep it off the public internet.
"""

import logging

from fixguard.gunicorn import nworkers_changed, on_starting
from fixguard.gunicorn import post_worker_init as protect

__all__ = ["child_exit", "nworkers_changed", "on_starting", "post_worker_init"]


def post_worker_init(worker):
    protect(worker)  # worker.wsgi is now the FixGuard around the app

    events = logging.getLogger("fixguard")  # fixguard's events into gunicorn's error log
    events.handlers = logging.getLogger("gunicorn.error").handlers
    events.setLevel(logging.INFO)
    events.propagate = False

    from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from fixguard.contrib.prometheus import Metrics

    Metrics().instrument(worker.wsgi)
    every_worker = CollectorRegistry()
    multiprocess.MultiProcessCollector(every_worker)
    worker.wsgi = DispatcherMiddleware(worker.wsgi, {"/metrics": make_wsgi_app(every_worker)})


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
