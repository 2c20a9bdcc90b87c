"""``python -m bench.asgi``: the guarded site under WSGI, under ASGI with sync views and under
ASGI with async views, on the same run and PostgreSQL (issue 17's benchmark).

For each serving (bench/asgi/serving.py: one gunicorn instance x one worker, the same fake
WeChat latency): callback p50/p99 and logins/s of plain logins and of the storm's
``parallel_20`` pattern, then a burst of duplicates of one code (bench/asgi/passes.py) with
the worker's OS threads and the site database's connections sampled every few ms
(bench/asgi/sampling.py). See bench/asgi/__main__.py for the command line and the targets.
"""
