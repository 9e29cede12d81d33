"""Response headers that browsers enforce: Content-Security-Policy and Permissions-Policy.

Django's SecurityMiddleware already sends HSTS, X-Content-Type-Options, Referrer-Policy and
Cross-Origin-Opener-Policy, and XFrameOptionsMiddleware X-Frame-Options; Django 5.2 has no CSP of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def content_security_policy(path: str) -> str:
    """The policy for a path: the first prefix of CAIRN_CONTENT_SECURITY_POLICIES it starts with."""
    for prefix, policy in settings.CAIRN_CONTENT_SECURITY_POLICIES.items():
        if path.startswith(prefix):
            return policy
    return ""


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that knows better (a file download, say) may set its own policy.
        policy = content_security_policy(request.path_info)
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        if settings.CAIRN_PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.CAIRN_PERMISSIONS_POLICY)
        return response
