"""The demo site of django-wechat-oauth: ``python manage.py demo``.

One process serves the site and, under ``/fake-wechat/``, a fake WeChat (see :mod:`.fake`), so
a login works on a machine with only Python and no internet. ``/naive/`` is the same login
done the way tutorials do it, to show the failure the app prevents.
"""
