"""A real browser against a live server: headless Chromium (Debian's ``chromium``).

The page uploads a body of 300 kB or 2 MB (the handler reads it late) and then fires 20 ``fetch``
calls, ten times over, on the connections Chromium keeps alive; it posts back how long
each fetch took. A connection that stopped reading after the upload showed up here as a
fetch answered only after the idle timeout (5 s; Chromium then retried elsewhere).
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import cyhttp

from .support import CHROMIUM, chromium

PAGE = b"""<!doctype html><meta charset="utf-8"><title>upload then fetch</title>
<script>
(async () => {
  const times = [];
  for (let round = 0; round < 10; round++) {
    // Just past the 256 KiB body high-water mark, and far past it.
    const upload = new Uint8Array(round % 2 ? 2000000 : 300000);
    const answer = await fetch("/upload", {method: "POST", body: upload});
    if ((await answer.text()) !== String(upload.length)) throw new Error("upload echo");
    await Promise.all(Array.from({length: 20}, async (_, i) => {
      const start = performance.now();
      const item = await fetch(`/item/${round}/${i}`);
      await item.text();
      times.push(performance.now() - start);
    }));
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(times)});
})().catch(e => fetch("/report", {method: "POST", body: JSON.stringify(String(e))}));
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_upload_then_fetch_has_no_stall(live):
    reported: list[object] = []
    done = threading.Event()

    async def app(request: cyhttp.Request) -> cyhttp.Response:
        if request.path == "/upload":
            await asyncio.sleep(0.1)  # read late: the body is complete and buffered by now
            return cyhttp.Response(b"%d" % len(await request.body()))
        if request.path == "/report":
            reported.append(json.loads(await request.body()))
            done.set()
            return cyhttp.Response(b"thanks")
        if request.path.startswith("/item/"):
            return cyhttp.Response(b"item", content_type="text/plain")
        return cyhttp.Response(PAGE, content_type="text/html; charset=utf-8")

    with live(app, max_body_size=8 << 20, keepalive_timeout=10.0) as srv, chromium(f"{srv.url}/"):
        assert done.wait(90), "the page never reported"
    (times,) = reported
    assert isinstance(times, list), times  # else the page's error
    assert len(times) == 200
    # Each fetch is one small GET on a loopback server: a stall would last the idle timeout
    # (10 s), far above the slowest fetch of a busy machine.
    assert max(times) < 5000, sorted(times)[-5:]
