"""A site that logs in with python-social-auth, configured social-auth's own way.

``settings_stock`` is the site as it is with social-core's ``weixinapp`` / ``weixin`` backends;
``settings_dropin`` the same site after the README's change (the drop-in backends and the
unionid pipeline step). ``settings`` is what both share. tests/test_contrib_social.py runs it
under ``--ds tests.social_site.settings_stock`` and swaps the backends itself; a benchmark can
serve either module as it is (see settings.py for the environment it reads).
"""
