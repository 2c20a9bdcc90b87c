"""The ``weixin_mp`` provider's URL module (allauth imports ``<provider package>.urls``)."""
