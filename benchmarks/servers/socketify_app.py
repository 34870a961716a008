"""socketify.py (uWebSockets bindings)."""

from socketify import App

from ._common import BIG, HELLO, item_answer, port


def hello(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end(HELLO)


def big(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end(BIG)


def item(res, req):
    item_id = req.get_parameter(0)
    body = item_answer(
        item_id, req.get_query("q"), req.get_query("page"), req.get_header("user-agent")
    )
    res.write_header("Content-Type", "application/json")
    res.write_header("Cache-Control", "no-store")
    res.write_header("X-Item", item_id)
    res.end(body)


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
    app.get("/items/:item", item)
    app.listen(port(), lambda config: None)
    app.run()
