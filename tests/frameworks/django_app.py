"""The test application, in Django: async views and a sync view on sqlite, through
Django's own ASGI handler, with the settings and middleware of a project fresh from
``django-admin startproject`` (its admin at ``/admin/``; ``admin_ready()`` migrates the
database and makes a superuser). Django has no lifespan support and no background
tasks; CORS is a small middleware here (Django ships none). Django is configured once
per process: this module is the only one that does it."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, AsyncIterator, Callable

import django
from django.conf import settings

from . import APP_DATE, APP_SERVER, BIG, ETAG, ORIGIN, numbers, ticks

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
        MIDDLEWARE=[
            f"{__name__}.cors",
            "django.middleware.gzip.GZipMiddleware",
            # startproject's list: CommonMiddleware sets Content-Length on every answer
            # that is not streamed (its redirects' and 204s' 0 included).
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(tempfile.mkdtemp(prefix="cyhttp-django-"), "db.sqlite3"),
            }
        },
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="/static/",
        # Tests only: the default hasher takes most of a second per login.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.contrib import admin  # noqa: E402 (after settings)
from django.contrib.auth.models import User  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import etag  # noqa: E402

ADMIN = ("admin", "a-password")


def admin_ready() -> None:
    """Migrate the database and make the superuser ``ADMIN`` (once a process)."""
    if not CURRENT.get("migrated"):
        call_command("migrate", verbosity=0)
        User.objects.create_superuser(ADMIN[0], "admin@example.org", ADMIN[1])
        CURRENT["migrated"] = True


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


async def go(request: Any) -> HttpResponseRedirect:
    return HttpResponseRedirect("/items/1")


async def slash(request: Any) -> HttpResponse:
    return HttpResponse("slash", content_type="text/plain")


@csrf_exempt
async def empty(request: Any) -> HttpResponse:
    return HttpResponse(status=201 if request.path == "/created" else 202)


async def nothing(request: Any) -> HttpResponse:
    return HttpResponse(status=204)


@etag(lambda request: ETAG.strip('"'))
def cached(request: Any) -> HttpResponse:
    return HttpResponse("fresh", content_type="text/plain")


async def sse(request: Any) -> StreamingHttpResponse:
    async def events() -> AsyncIterator[str]:
        async for n, data in ticks():
            yield f"id: {n}\ndata: {data}\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def own_server(request: Any) -> HttpResponse:
    response = HttpResponse("own", content_type="text/plain")
    response["Server"] = APP_SERVER
    response["Date"] = APP_DATE
    return response


urlpatterns = [
    path("items/<int:id>", item),
    path("json", json_echo),
    path("form", form),
    path("stream", stream),
    path("file", send_file),
    path("big", big),
    path("notes", notes),
    path("boom", boom),
    path("go", go),
    path("slash/", slash),
    path("created", empty),
    path("accepted", empty),
    path("nothing", nothing),
    path("cached", cached),
    path("sse", sse),
    path("own-server", own_server),
    path("admin/", admin.site.urls),
]


def make(file: str, events: list[str]) -> Any:
    CURRENT["file"] = file
    return get_asgi_application()
