"""The project's views and routes."""

from __future__ import annotations

import json
from typing import Any

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .. import wsgi_shared as shared


def item(request: HttpRequest, item: int) -> JsonResponse:
    return JsonResponse({"id": item, "q": request.GET.get("q")})


@csrf_exempt
def json_in_and_out(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**json.loads(request.body), "seen": True}, status=201)


@csrf_exempt
def form(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dict(request.POST.items()))


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    sent = request.FILES["file"]
    return JsonResponse({"name": sent.name, "size": len(sent.read())})


def protected(request: HttpRequest) -> Any:
    """A form behind Django's CSRF check: GET hands out the token, POST needs it."""
    if request.method == "POST":
        return JsonResponse({"note": request.POST["note"]})
    return HttpResponse(get_token(request), content_type="text/plain")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(shared.lines(), content_type="text/plain")


def next_line(request: HttpRequest) -> HttpResponse:
    shared.NEXT.set()
    return HttpResponse("ok")


def file(request: HttpRequest) -> FileResponse:
    return FileResponse(open(shared.FILE, "rb"), content_type="text/plain")


def go(request: HttpRequest) -> Any:
    return redirect("/items/1")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a view that fails")


def forbidden(request: HttpRequest) -> HttpResponse:
    return HttpResponseForbidden()


urlpatterns = [
    path("items/<int:item>", item),
    path("json", json_in_and_out),
    path("form", form),
    path("upload", upload),
    path("protected", protected),
    path("stream", stream),
    path("next", next_line),
    path("file", file),
    path("go", go),
    path("boom", boom),
    path("forbidden", forbidden),
]
