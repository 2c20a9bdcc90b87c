"""python-social-auth drop-in: social-core's WeChat backends, exchanging every code once.

.. code-block:: python

    INSTALLED_APPS = [..., "social_django", "wechat_oauth"]   # then manage.py migrate
    AUTHENTICATION_BACKENDS = [
        # were social_core.backends.weixin.WeixinOAuth2APP and .WeixinOAuth2
        "wechat_oauth.contrib.social.backends.WeixinOAuth2APP",
        "wechat_oauth.contrib.social.backends.WeixinOAuth2",
        ...]

The backends keep social-core's names (``weixinapp``, ``weixin``), settings
(``SOCIAL_AUTH_WEIXINAPP_KEY`` / ``_SECRET`` / ``_SCOPE``...) and uids (the openid), so the
``UserSocialAuth`` rows the stock backends made keep logging in to their users. What changes
is in :mod:`.backends`; :func:`.pipeline.associate_by_unionid` links one person's accounts of
several WeChat apps to one user. Needs ``pip install "django-wechat-oauth[social]"``
(social-auth-core 6.2 or 7.x, with the social-auth-app-django release of each).
"""
