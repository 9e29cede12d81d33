"""Sign-in throttling and API tokens.

Every door that checks a password counts its failures in the cache: the dashboard's login page, the admin's and
POST /api/v1/auth/token/. After CAIRN_LOGIN_FAILURES_PER_USERNAME failures for one username, or
CAIRN_LOGIN_FAILURES_PER_ADDRESS from one address, within CAIRN_LOGIN_WINDOW_MINUTES, every further attempt is
refused, even with the right password, until the window ends. A successful sign-in clears its username's count;
an address's count runs out with its window, so one good account cannot reset the count of an address that is
guessing others' passwords.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

PREFIX = "cairn:login-failures"


def client_address(request: HttpRequest | Request) -> str:
    """The caller's address: REMOTE_ADDR, or the entry CAIRN_TRUSTED_PROXIES from the end of X-Forwarded-For.

    Each trusted proxy appends the address it received the request from, so entries further left were written
    by the client and prove nothing.
    """
    proxies = settings.CAIRN_TRUSTED_PROXIES
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request: HttpRequest | Request, username: str) -> dict[str, str]:
    # Hashed: usernames are user input of any length and alphabet, and cache keys should not hold them.
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    address = hashlib.sha256(client_address(request).encode()).hexdigest()
    return {"username": f"{PREFIX}:username:{name}", "address": f"{PREFIX}:address:{address}"}


def _limits() -> dict[str, int]:
    return {
        "username": settings.CAIRN_LOGIN_FAILURES_PER_USERNAME,
        "address": settings.CAIRN_LOGIN_FAILURES_PER_ADDRESS,
    }


def login_retry_after(*, request: HttpRequest | Request, username: str) -> int:
    """Seconds until sign-in is allowed again for this username from this address; 0 when it is allowed now."""
    keys = _keys(request, username)
    stored = cache.get_many([*keys.values(), *(f"{key}:ends" for key in keys.values())])
    now = time.time()
    wait = 0.0
    for kind, key in keys.items():
        if stored.get(key, 0) >= _limits()[kind]:
            ends = stored.get(f"{key}:ends", now + settings.CAIRN_LOGIN_WINDOW_MINUTES * 60)
            wait = max(wait, ends - now)
    return math.ceil(wait)


def login_failure_record(*, request: HttpRequest | Request, username: str) -> None:
    """Count one failed attempt for the username and the address, each in a window opened by its first failure."""
    window = settings.CAIRN_LOGIN_WINDOW_MINUTES * 60
    for key in _keys(request, username).values():
        # add() opens the window only if none is open; incr() is atomic in Redis and in the local memory cache.
        cache.add(f"{key}:ends", time.time() + window, timeout=window)
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # the window closed between add() and incr()
            cache.set(key, 1, timeout=window)


def login_success_record(*, request: HttpRequest | Request, username: str) -> None:
    """A successful sign-in clears its username's failures (not its address's)."""
    key = _keys(request, username)["username"]
    cache.delete_many([key, f"{key}:ends"])


def too_many_attempts_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


class ThrottledLoginMixin:
    """For AuthenticationForm subclasses: refuse while throttled, count wrong credentials, reset on success."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    user_cache: Any

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        request = self.request
        if request is None:  # a form built without a request cannot be throttled; Django's views pass one
            return super().clean()  # type: ignore[misc]
        wait = login_retry_after(request=request, username=username)
        if wait:
            raise ValidationError(too_many_attempts_message(wait), code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError:
            # Right password but not allowed in (inactive, or not staff on the admin's page) is not a guess.
            if self.user_cache is None:
                login_failure_record(request=request, username=username)
            raise
        if self.user_cache is not None:
            login_success_record(request=request, username=username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm


class _DeleteNeedsAuthentication(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method == "DELETE":
            return IsAuthenticated().has_permission(request, view)
        return AllowAny().has_permission(request, view)


_TOKEN = inline_serializer("AuthToken", fields={"token": serializers.CharField()})


class AuthTokenView(ObtainAuthToken):
    """POST username and password for your API token (the same one until revoked); DELETE revokes it."""

    permission_classes = (_DeleteNeedsAuthentication,)
    throttle_classes = api_settings.DEFAULT_THROTTLE_CLASSES

    @extend_schema(request=AuthTokenSerializer, responses={200: _TOKEN})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data if isinstance(request.data, Mapping) else {}
        username = str(data.get("username", ""))
        wait = login_retry_after(request=request, username=username)
        if wait:
            raise Throttled(wait=wait, detail=too_many_attempts_message(wait))
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            if "non_field_errors" in serializer.errors:  # both given, and they did not match a user
                login_failure_record(request=request, username=username)
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        user = serializer.validated_data["user"]
        login_success_record(request=request, username=username)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke the caller's token: requests that present it are refused from now on."""
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
