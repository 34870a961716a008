# Shell helpers of .ci/run and .ci/wheels (sourced).

# A port nothing listens on now (the kernel's pick), so that no other server can answer.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Wait for cyhttp on PORT to answer / with Hello, world! (up to 120 s).
await_hello() {
    local port=$1 pid=$2 answer
    for _ in $(seq 240); do
        if answer=$(curl -fsS -i "http://127.0.0.1:$port/" 2>/dev/null) \
            && [[ $answer == *$'Server: cyhttp\r'* && $answer == *$'\r\n\r\nHello, world!' ]]; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "server exited early" >&2; return 1; }
        sleep 0.5
    done
    echo "server did not answer on port $port" >&2
    return 1
}

stop_group() { kill -TERM -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# What the ASGI, WSGI, WebSocket and TLS tests need beyond pytest (tests/test_asgi*.py,
# tests/test_frameworks.py, tests/test_wsgi*.py, tests/test_websocket*.py,
# tests/test_tls.py, tests/test_gunicorn.py); the test extra's frameworks and clients.
ASGI_TEST_DEPS=(httpx starlette fastapi pydantic django channels litestar quart python-multipart
    blacksheep sse-starlette uvicorn "anyio>=4.14" "asgion; python_version >= '3.12'"
    websockets aiohttp trustme flask falcon bottle gunicorn)
