"""What ``receive()`` and ``send()`` return, awaited every way asyncio and anyio await a
coroutine, on both cores over real sockets.

Applications and frameworks do more than ``await receive()``: Django Channels hands
``receive()`` to ``asyncio.ensure_future`` and waits with ``asyncio.wait``; an
application notices a client that went away with ``asyncio.wait_for(receive(), t)``;
anyio task groups take coroutines only. Every way is tried on each path of an exchange:
a body already whole, a chunked body still arriving, a streamed response that waits for
room, the ``http.disconnect`` after the response, and a client that closed.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any, Awaitable, Callable

import anyio
import httpx
import pytest

from .support import read_until_closed

Scope = dict[str, Any]
Way = Callable[..., Awaitable[Any]]
DISCONNECT = {"type": "http.disconnect"}
PIECE = b"x" * 65536  # a streamed piece that fills the server's buffer: send() must wait


async def bare(fn: Any, *args: Any) -> Any:
    return await fn(*args)


async def ensure_future(fn: Any, *args: Any) -> Any:
    return await asyncio.ensure_future(fn(*args))


async def wait_for(fn: Any, *args: Any) -> Any:
    return await asyncio.wait_for(fn(*args), 5)


async def shield(fn: Any, *args: Any) -> Any:
    return await asyncio.shield(fn(*args))


async def gather(fn: Any, *args: Any) -> Any:
    (result,) = await asyncio.gather(fn(*args))
    return result


async def wait(fn: Any, *args: Any) -> Any:
    # As Django Channels waits for its receive().
    done, _ = await asyncio.wait([asyncio.ensure_future(fn(*args))], timeout=5)
    return done.pop().result()


async def create_task(fn: Any, *args: Any) -> Any:
    return await asyncio.create_task(fn(*args))


async def loop_create_task(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().create_task(fn(*args))


async def task_group(fn: Any, *args: Any) -> Any:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(fn(*args))
    return task.result()


async def anyio_task_group(fn: Any, *args: Any) -> Any:
    async with anyio.create_task_group() as group:
        handle = group.start_soon(fn, *args)
    return await handle


async def anyio_cancel_scope(fn: Any, *args: Any) -> Any:
    with anyio.fail_after(5):
        return await fn(*args)


WAYS: dict[str, Way] = {
    way.__name__: way
    for way in (
        bare, ensure_future, wait_for, shield, gather, wait, create_task, loop_create_task,
        task_group, anyio_task_group, anyio_cancel_scope,
    )
}  # fmt: skip


@pytest.fixture(params=WAYS)
def way(request: pytest.FixtureRequest) -> Way:
    return WAYS[request.param]


def echo(way: Way, seen: list[Any]) -> Any:
    """Receives the whole body, answers it, then receives once more: every call *way*."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await way(receive)
            seen.append(message)
            body += message["body"]
            if not message["more_body"]:
                break
        await way(send, {"type": "http.response.start", "status": 200, "headers": []})
        await way(send, {"type": "http.response.body", "body": b"got " + body})
        seen.append(await way(receive))  # after the response: http.disconnect at once

    return app


def until(check: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for *check*: the application goes on after the response."""
    deadline = time.monotonic() + 5
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_get(live, way):
    seen: list[Any] = []
    with live(echo(way, seen), lifespan="off") as srv:
        reply = httpx.get(srv.url + "/", timeout=10)
        until(lambda: len(seen) == 2)
    assert (reply.status_code, reply.content) == (200, b"got ")
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, DISCONNECT]


def test_chunked_post_arriving_in_two_writes(live, way):
    seen: list[Any] = []
    with live(echo(way, seen), lifespan="off") as srv:
        with srv.connect() as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
            )
            time.sleep(0.1)  # the application waits for the rest meanwhile
            sock.sendall(b"2\r\nde\r\n0\r\n\r\n")
            answer = read_until_closed(sock)
        until(lambda: seen[-1:] == [DISCONNECT])
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\ngot abcde")
    *requests, end = seen
    assert len(requests) >= 2 and b"".join(m["body"] for m in requests) == b"abcde"
    assert [m["more_body"] for m in requests][-1] is False and end == DISCONNECT


def test_streamed_response_that_waits_for_room(live, way):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await way(send, {"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(4):
            await way(send, {"type": "http.response.body", "body": PIECE, "more_body": True})
        await way(send, {"type": "http.response.body", "body": b"end"})

    with live(app, lifespan="off") as srv:
        reply = httpx.get(srv.url + "/", timeout=10)
    assert reply.status_code == 200 and reply.content == PIECE * 4 + b"end"


def test_client_that_closed(live, way):
    seen: list[Any] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(await way(receive))  # the (empty) body
        seen.append(await way(receive))  # waits: no response yet; then the client closes
        seen.append(await way(receive))  # once it has gone: at once
        done.set()

    with live(app, lifespan="off") as srv:
        with srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.1)
        assert done.wait(5)
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}] + [DISCONNECT] * 2


# -- waiting for a client to go away, a while at a time -------------------------------


async def poll_wait_for(receive: Any) -> Any:
    try:
        return await asyncio.wait_for(receive(), 0.02)
    except TimeoutError:
        return None


async def poll_timeout(receive: Any) -> Any:
    try:
        async with asyncio.timeout(0.02):
            return await receive()
    except TimeoutError:
        return None


async def poll_move_on_after(receive: Any) -> Any:
    with anyio.move_on_after(0.02):
        return await receive()
    return None


async def poll_anyio_task_group(receive: Any) -> Any:
    # receive() as a task of its own, cancelled with its group when it has not finished
    async with anyio.create_task_group() as group:
        handle = group.start_soon(receive)
        await anyio.sleep(0.02)
        group.cancel_scope.cancel()
    return None if handle.status is handle.Status.CANCELLED else await handle


POLLS = {poll.__name__: poll for poll in (poll_wait_for, poll_timeout, poll_move_on_after)}
POLLS["poll_anyio_task_group"] = poll_anyio_task_group


@pytest.mark.parametrize("poll", POLLS)
def test_polling_receive_learns_the_client_went_away(live, poll):
    """An application at work asks ``receive()`` a short while at a time whether the
    client is still there: each wait cancelled, it learns of the ``http.disconnect``."""
    answers: list[Any] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        while not answers or answers[-1] is None:
            answers.append(await POLLS[poll](receive))
        done.set()

    with live(app, lifespan="off") as srv:
        with srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
        closed_at = time.monotonic()
        assert done.wait(5)
    assert time.monotonic() - closed_at < 2
    assert answers[-1] == DISCONNECT and answers[:-1] == [None] * (len(answers) - 1)
    assert len(answers) > 2  # it did wait, and gave up, several times


def test_every_answer_is_a_coroutine_to_asyncio_and_to_inspect(live):
    """What asyncio (``iscoroutine``, before it makes a Task) and anyio's cancel scopes
    (``inspect.getcoroutinestate`` of a task's coroutine) ask of a coroutine, asked of
    what each path of ``receive()`` and ``send()`` returns."""
    views: list[Any] = []

    def view(awaitable: Any) -> Any:
        try:
            state = inspect.getcoroutinestate(awaitable)
        except AttributeError as exc:
            state = repr(exc)
        views.append((asyncio.iscoroutine(awaitable), state))
        return awaitable

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while (await view(receive()))["more_body"]:  # a body still arriving, then whole
            pass
        try:  # the end, not there yet: given up on
            await asyncio.wait_for(view(receive()), 0.01)
        except TimeoutError:
            pass
        await view(send({"type": "http.response.start", "status": 200, "headers": []}))
        await view(send({"type": "http.response.body", "body": PIECE, "more_body": True}))
        await view(send({"type": "http.response.body", "body": b""}))
        await view(receive())  # http.disconnect after the response

    with live(app, lifespan="off") as srv:
        with srv.connect() as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
            )
            time.sleep(0.1)
            sock.sendall(b"0\r\n\r\n")
            assert read_until_closed(sock).endswith(PIECE + b"\r\n0\r\n\r\n")
        until(lambda: len(views) >= 7)
    # Not started yet, or (those with nothing to wait for) finished already.
    assert len(views) >= 7
    assert all(view in [(True, "CORO_CREATED"), (True, "CORO_CLOSED")] for view in views), views


def test_a_send_given_up_waiting_for_room_leaves_the_stream_whole(live):
    """``asyncio.wait_for(send(...), t)`` while a client reads slowly: each wait given up
    on ends only that wait (the piece was taken), and the stream goes on."""
    gave_up: list[int] = []
    pieces = 160  # 10 MiB: more than the sockets' buffers hold for a client not reading

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(pieces):
            message = {"type": "http.response.body", "body": PIECE, "more_body": True}
            try:
                await asyncio.wait_for(send(message), 0.05)
            except TimeoutError:
                gave_up.append(1)
        await send({"type": "http.response.body", "body": b"end"})

    with live(app, lifespan="off") as srv:
        with httpx.stream("GET", srv.url + "/", timeout=10) as reply:
            time.sleep(0.5)  # the client reads none of the body meanwhile
            body = reply.read()
    assert gave_up  # the application did give up on some waits
    assert reply.status_code == 200 and body == PIECE * pieces + b"end"
