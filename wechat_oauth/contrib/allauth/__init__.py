"""A drop-in for django-allauth's Weixin provider: the same provider id (``weixin``), the same
``SocialApp`` and ``SocialAccount`` rows, templates and URLs, with every code exchanged exactly
once (:func:`wechat_oauth.guard.exchange_once`).

.. code-block:: python

    INSTALLED_APPS = [
        ...,
        "allauth.socialaccount",
        # "allauth.socialaccount.providers.weixin",    # replaced by the two lines below
        "wechat_oauth",
        "wechat_oauth.contrib.allauth",
    ]

What differs from allauth's own provider (``allauth.socialaccount.providers.weixin``), and why:

* **The state** is the app's signed state (:mod:`wechat_oauth.state`), not a random id kept in
  the session and popped by the callback: WeChat's duplicate callbacks and its in-app browser's
  dropped cookies made that fail before the code mattered. What allauth keeps with its state
  (``process``, ``next``, ``data``, ``headless``) rides in the callback URL's query, bound by the
  state's HMAC (:mod:`.redirect`); the login start sets the browser-binding cookie the state
  commits to (:mod:`wechat_oauth.binding`).
* **The exchange** goes through the fence with the client of the ``SocialApp``'s credentials
  (:mod:`.client`); the profile is fetched only under ``snsapi_userinfo``/``snsapi_login``
  (``snsapi_base`` would get 48001) and only by the first request for a code.
* **The authorize URL** has WeChat's parameter order and ``#wechat_redirect``; a website app
  (``snsapi_login``) goes to qrconnect.
* **Snapshot users** get the app's "open the full page" page; no user is made for them.
* **Completion** is allauth's own (``complete_social_login``: its adapters, signals, signup,
  templates), inside a transaction that a concurrent first login of the same identity makes
  roll back and try again (:mod:`.completion`): one user per openid, no orphan users.
* **Unbound callbacks** (no binding cookie: WeChat's browser dropped it) never silently replace
  a different logged-in user, and never connect an account (``process=connect``).
* **Two kinds, two providers**: allauth allows one visible app per provider, so an Official
  Account beside the website app is provider ``weixin_mp`` (:class:`.provider.WeixinMPProvider`).
* **unionid linking** (``LINK_BY_UNIONID`` in a provider's settings): a new identity whose
  unionid is known joins that person's user (``WeChatUnion``, race-safe).
"""
