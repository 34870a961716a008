"""The test application, in Django: async views and a sync view on sqlite, through
Django's own ASGI handler. Django has no lifespan support and no background tasks;
CORS is a small middleware here (Django ships none)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, AsyncIterator, Callable

import django
from django.conf import settings

from . import BIG, ORIGIN, numbers

CURRENT: dict[str, Any] = {}  # the file the /file view serves


def cors(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def middleware(request: Any) -> Any:
        response = get_response(request)
        if request.headers.get("Origin") == ORIGIN:
            response["Access-Control-Allow-Origin"] = ORIGIN
        return response

    return middleware


if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="tests-only",
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.cors", "django.middleware.gzip.GZipMiddleware"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(tempfile.mkdtemp(prefix="cyhttp-django-"), "db.sqlite3"),
            }
        },
        INSTALLED_APPS=[],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 (after settings)
from django.db import connection  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


async def item(request: Any, id: int) -> JsonResponse:
    return JsonResponse({"id": id, "q": request.GET.get("q")})


@csrf_exempt
async def json_echo(request: Any) -> JsonResponse:
    return JsonResponse({**json.loads(request.body), "seen": True}, status=201)


@csrf_exempt
async def form(request: Any) -> JsonResponse:
    upload = request.FILES.get("file")
    if upload is not None:
        return JsonResponse({"name": upload.name, "size": len(upload.read())})
    return JsonResponse(request.POST.dict())


async def stream(request: Any) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[str]:
        async for line in numbers():
            yield line

    return StreamingHttpResponse(body(), content_type="text/plain")


def send_file(request: Any) -> FileResponse:
    return FileResponse(open(CURRENT["file"], "rb"))


async def big(request: Any) -> HttpResponse:
    return HttpResponse(BIG, content_type="text/plain")


@csrf_exempt
def notes(request: Any) -> JsonResponse:
    """A sync view (run by Django in a thread) that writes and reads sqlite."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
        if request.method == "POST":
            cursor.execute("INSERT INTO notes VALUES (%s)", [request.POST["text"]])
        cursor.execute("SELECT text FROM notes ORDER BY rowid")
        return JsonResponse({"notes": [row[0] for row in cursor.fetchall()]})


async def boom(request: Any) -> None:
    raise RuntimeError("view failed")


urlpatterns = [
    path("items/<int:id>", item),
    path("json", json_echo),
    path("form", form),
    path("stream", stream),
    path("file", send_file),
    path("big", big),
    path("notes", notes),
    path("boom", boom),
]


def make(file: str, events: list[str]) -> Any:
    CURRENT["file"] = file
    return get_asgi_application()
