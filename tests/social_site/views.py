from django.contrib.auth import logout
from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "social_site/home.html")


def login_page(request: HttpRequest) -> HttpResponse:
    """The site's login page: social-auth-app-django starts a login with a POST (CSRF)."""
    return render(request, "social_site/login.html", {"next": request.GET.get("next", "/")})


def login_error(request: HttpRequest) -> HttpResponse:
    """SOCIAL_AUTH_LOGIN_ERROR_URL: where social-auth's middleware sends a failed login."""
    return render(
        request,
        "social_site/login_error.html",
        {"errors": [str(message) for message in get_messages(request)]},
    )


def whoami(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"user": None, "accounts": []})
    accounts = [
        {"provider": social.provider, "uid": social.uid} for social in user.social_auth.order_by("pk")
    ]
    return JsonResponse({"user": user.get_username(), "user_id": user.pk, "accounts": accounts})


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("/")
