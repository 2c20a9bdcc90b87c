"""WeChat web login (OAuth2) for Django, with exactly-once code exchange."""

__version__ = "0.1.0.dev0"
