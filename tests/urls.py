from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from wechat_oauth.flow import login_here


def whoami(request: HttpRequest) -> JsonResponse:
    """What a page sees of the visitor: the Django user and request.wechat."""
    identity = request.wechat
    return JsonResponse(
        {
            "user": request.user.get_username() if request.user.is_authenticated else None,
            "openid": identity.openid if identity else None,
            "path": request.get_full_path(),
        }
    )


def login_to_page(request: HttpRequest):
    """Starts a login whose redirect_uri is /page/?x=1 itself (the middleware completes it)."""
    return login_here(request, target="/page/?x=1")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("wechat/", include("wechat_oauth.urls")),
    path("whoami/", whoami),
    path("page/", whoami),
    path("page/login/", login_to_page),
]
