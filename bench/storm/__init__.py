"""``python -m bench.storm``: the login storm, the headline benchmark.

Two real sites under gunicorn (2 instances x 2 gthread workers each), both talking to one fake
WeChat in its own process (80 ms per API call, like a cross-network call):

* ``guarded``: this app (``wechat_oauth`` views, middleware, backend; database
  ``wechat_oauth_storm``; database sessions; the django-redis front on a private Redis);
* ``naive``: what tutorials do (``bench/storm/naive``): the state in the session, popped by the
  callback, the code exchanged with ``requests.get``, the user from ``get_or_create``; database
  ``wechat_oauth_storm_naive``.

Each site has four apps (``bench/storm/apps.py``), the four kinds of login the storm
drives: an Official Account (``mp``: the authorize page, in WeChat's browser), a website app
(``open``: the QR login through the qrconnect page, in a desktop browser) and a Mini Program
(``mini``: a ``wx.login()`` code POSTed to ``<app>/session/``), all bound to one Open Platform
account, so a person has one unionid and must be one user on the site; and a WeCom app
(``wecom``: the in-app authorisation in WeCom's browser, whose callback is aborted and re-sent
like WeChat's). ``--kind`` picks them (default ``mp,open``).

Both on the same database: PostgreSQL by default, MariaDB or SQLite (Django's default
settings) with ``--db`` (``bench/storm/databases.py``); ``--db postgres,mariadb,sqlite`` runs
the storm once per database and reports them side by side.

A load generator in this process (threads, one ``requests.Session`` per browser) drives logins
of each kind with every duplicate-callback pattern of wechat-web-auth.md §3 (the Mini Program:
a careless front end's duplicate POSTs; WeCom: abort-and-resend and a few more) and reports what
users saw, upstream exchanges per code (the fake's counters), users per person (each
database; across both apps), latency, throughput and SQL per callback. See
``bench/storm/__main__.py`` for the command line and ``bench/storm/report.py`` for what each
figure counts.
"""
