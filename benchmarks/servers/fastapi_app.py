"""A FastAPI application, the same under uvicorn, granian (ASGI) and cyhttp (ASGI).

The hello route answers the same bytes as every other server's; the realistic route
is what a FastAPI user writes for it: a path parameter, two query parameters and a
header, declared in the signature and validated by FastAPI, and an orjson answer.
"""

from typing import Optional

from fastapi import FastAPI, Header
from fastapi.responses import PlainTextResponse, Response

from ._common import BIG, HELLO, item_answer

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/", response_class=PlainTextResponse)
async def hello() -> bytes:
    return PlainTextResponse(HELLO)


@app.get("/64k", response_class=PlainTextResponse)
async def big() -> bytes:
    return PlainTextResponse(BIG)


@app.get("/items/{item}")
async def item(
    item: int, q: Optional[str] = None, page: int = 1, user_agent: Optional[str] = Header(None)
) -> Response:
    body = item_answer(str(item), q, str(page), user_agent)
    return Response(
        body,
        media_type="application/json",
        headers={"cache-control": "no-store", "x-item": str(item)},
    )
