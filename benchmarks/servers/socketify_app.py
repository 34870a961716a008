"""socketify.py (uWebSockets bindings)."""

from socketify import App

from ._common import BIG, HELLO, port


def hello(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end(HELLO)


def big(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end(BIG)


async def echo(res, req):
    data = await res.get_data()
    body = data.getvalue() if hasattr(data, "getvalue") else bytes(data)
    res.write_header("Content-Type", "text/plain")
    res.end(body)


if __name__ == "__main__":
    app = App()
    app.get("/", hello)
    app.get("/64k", big)
    app.post("/echo", echo)
    app.listen(port(), lambda config: None)
    app.run()
