from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """A page with allauth's login links ({% provider_login_url %} for each provider)."""
    return render(request, "allauth_site/home.html")


def whoami(request: HttpRequest) -> JsonResponse:
    """Who the browser is logged in as, and that user's social accounts."""
    from allauth.socialaccount.models import SocialAccount

    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"user": None, "id": None, "accounts": []})
    accounts = sorted(SocialAccount.objects.filter(user=user).values_list("provider", "uid"))
    return JsonResponse(
        {"user": user.get_username(), "id": user.pk, "accounts": [list(account) for account in accounts]}
    )
