"""Rebuild the request corpora in this folder from the projects that publish them.

    python tests/corpora/extract.py llhttp LLHTTP_CHECKOUT gunicorn GUNICORN_CHECKOUT

(either corpus alone, too). Reads llhttp's ``test/request/*.md`` (MIT; the vectors
of its default, strict mode, ``{"type": "request"}``) and gunicorn's
``tests/requests/{valid,invalid}`` (MIT; every vector whose expectation file sets
no parser setting), and writes one JSON file per corpus: each vector's bytes
(latin-1), where it comes from, and the expected outcome: the complete messages
the reference parser read, what came after them (``"end"``, ``"refuse"``, or
``"switch"`` where llhttp pauses for a protocol switch) and whether the bytes end
where the last message ends; for a gunicorn refusal, the exception it names and
the status gunicorn answers it with (``GUNICORN_STATUS``). Only the data is
taken; the expectations are read from each project's own notation, never run.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def git(repo: str, *args: str) -> str:
    out = subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout
    return out.decode("utf-8")


def llhttp_input(text: str) -> bytes:
    # The notation of llhttp's test/md-test.ts.
    text = text[:-1] if text.endswith("\n") else text  # the block's own last newline
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    for escape, char in (("\\r", "\r"), ("\\n", "\n"), ("\\t", "\t"), ("\\f", "\f")):
        text = text.replace(escape, char)
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16)), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
    # The harness hands llhttp the string's UTF-8 bytes (a JavaScript Buffer's default);
    # its log prints the bytes one character each, as latin-1 reads them.
    return text.encode("utf-8")


def unescape(text: str) -> str:
    """The escapes of llhttp's printed spans (``\\t``, ``\\r``, ``\\xNN``...)."""
    chars = {"t": "\t", "f": "\f", "r": "\r", "n": "\n"}
    return re.sub(
        r"\\(x[0-9a-fA-F]{2}|[tfrn])",
        lambda m: chars.get(m.group(1)) or chr(int(m.group(1)[1:], 16)),
        text,
    )


SPAN = re.compile(r'off=\d+ len=\d+ span\[(\w+)\]="(.*)"$')


def llhttp_messages(log: str, size: int) -> dict:
    messages: list[dict] = []
    current: dict = {}
    field = value = None
    end = 0
    then = "end"
    for line in log.splitlines():
        span = SPAN.match(line)
        if "error code=21 " in line or "error code=22 " in line:
            then = "switch"  # llhttp pauses: a protocol switch (Upgrade or CONNECT)
            break
        if "error code=" in line:
            then = "refuse"
            break
        if span:
            # In the corpus, text is the bytes read as latin-1, as the test reads the wire.
            kind = span.group(1)
            text = unescape(span.group(2)).encode("utf-8").decode("latin-1")
            if kind == "method":
                current = {"method": "", "url": "", "headers": [], "body": "", "trailers": []}
                current["method"] += text
            elif kind in ("url", "body"):
                current[kind] += text
            elif kind == "header_field":
                field = (field or "") + text
            elif kind == "header_value":
                value = (value or "") + text
            elif kind == "version":
                current["version"] = text
        elif line.endswith("header_value complete"):
            # Fields after the head are the trailer section's (llhttp reports both alike).
            section = "trailers" if "head_done" in current else "headers"
            current[section].append([field, value or ""])
            field = value = None
        elif " headers complete " in line:
            current["head_done"] = True
        elif line.endswith("message complete"):
            current.pop("head_done", None)
            messages.append(current)
            current = {}
            end = int(line.split()[0][4:])
    return {"messages": messages, "then": then, "complete": then != "end" or end == size}


def llhttp(repo: str) -> list[dict]:
    commit = git(repo, "rev-parse", "HEAD").strip()
    vectors = []
    for path in git(repo, "ls-tree", "--name-only", "HEAD", "test/request/").split():
        text = git(repo, "show", f"HEAD:{path}")
        title = ""
        for block in re.finditer(r"^(#+ [^\n]*)$|^<!-- meta=(\{[^\n]*\}) -->$", text, re.M):
            if block.group(1):
                title = block.group(1).lstrip("# ").strip()
                continue
            meta = json.loads(block.group(2))
            if meta != {"type": "request"} and meta != {"type": "request", "noScan": True}:
                continue  # lenient modes, or tests of llhttp's own pausing API
            # The input fence right after the meta line; its log is the next log fence.
            http = re.compile(r"```http\n(.*?)^```$", re.S | re.M).match(text, block.end() + 1)
            if http is None:
                continue  # a meta line for another kind of fence
            log = re.compile(r"^```log\n(.*?)^```$", re.S | re.M).search(text, http.end())
            body = http.group(1)
            if "${" in body:
                continue  # built by JavaScript in llhttp's harness
            line = text[: block.start()].count("\n") + 1
            data = llhttp_input(body)
            vectors.append(
                {
                    "name": f"{Path(path).stem}: {title}",
                    "source": f"nodejs/llhttp@{commit[:12]}:{path}:{line}",
                    "data": data.decode("latin-1"),
                    "expect": llhttp_messages(log.group(1), len(data)),
                }
            )
    return vectors


# The status gunicorn answers each of its parser's exceptions with (handle_error in
# gunicorn/workers/base.py). It raises the chunked-body ones while the application reads
# the body, so its answer then depends on the application: RFC 9112 §7.1 makes such a
# body a malformed message, 400. NoMoreData is input ending inside a head (gunicorn
# closes); the test sends a valid request after each vector, which makes that head
# malformed, 400.
GUNICORN_STATUS = {
    "InvalidRequestLine": 400,
    "InvalidRequestMethod": 400,
    "InvalidHTTPVersion": 400,
    "InvalidHeader": 400,
    "InvalidHeaderName": 400,
    "ObsoleteFolding": 400,
    "LimitRequestLine": 400,
    "LimitRequestHeaders": 431,
    "UnsupportedTransferCoding": 501,
    "InvalidChunkSize": 400,
    "ChunkMissingTerminator": 400,
    "InvalidChunkExtension": 400,
    "NoMoreData": 400,
}


class Raised:
    """An exception class named in an expectation file: the vector is refused."""

    def __init__(self, name: str) -> None:
        self.name = name


def gunicorn_value(node: ast.expr, names: dict) -> object:
    """A value in the notation of gunicorn's expectation files: literals, names assigned
    before, ``uri("...")`` (the target as sent), and str/bytes method chains."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [gunicorn_value(item, names) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            gunicorn_value(k, names): gunicorn_value(v, names)  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.Call):
        args = [gunicorn_value(arg, names) for arg in node.args]
        func = node.func
        if isinstance(func, ast.Name) and func.id == "uri":
            return args[0]
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode", "replace"):
            return getattr(gunicorn_value(func.value, names), func.attr)(*args)
    raise ValueError(f"not in the expectation notation: {ast.unparse(node)}")


def gunicorn_expect(source: str) -> dict | None:
    """The expected outcome an expectation file states; None if it changes a setting
    (``cfg.set``): the vector is for a non-default parser."""
    names: dict = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.ImportFrom):
            names.update((alias.name, Raised(alias.name)) for alias in stmt.names)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            if ast.unparse(stmt.value.func) == "cfg.set":
                return None
            raise ValueError(f"unknown statement: {ast.unparse(stmt)}")
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            if ast.unparse(stmt.value) == "Config()":
                continue  # the default settings
            names[stmt.targets[0].id] = gunicorn_value(stmt.value, names)
    request = names["request"]
    if isinstance(request, Raised):
        status = GUNICORN_STATUS[request.name]  # a new exception must be mapped by hand
        return {
            "messages": [],
            "then": "refuse",
            "complete": True,
            "error": request.name,
            "status": status,
        }
    out = []
    for req in request if isinstance(request, list) else [request]:
        body = req.get("body", b"")
        out.append(
            {
                "method": req["method"],
                "url": req["uri"],
                "version": "{}.{}".format(*req["version"]),
                "headers": [[n, v] for n, v in req["headers"]],
                "body": body.decode("latin-1") if isinstance(body, bytes) else body,
                **({"trailers": [[n, v] for n, v in req["trailers"]]} if "trailers" in req else {}),
            }
        )
    # A file may hold less of a body than its Content-Length says (gunicorn reads what
    # is there): then the bytes end inside the message.
    declared = [dict((n.lower(), v) for n, v in m["headers"]).get("content-length") for m in out]
    complete = all(len(m["body"]) >= int(n or 0) for m, n in zip(out, declared, strict=True))
    return {"messages": out, "then": "end", "complete": complete}


def gunicorn_data(raw: bytes) -> bytes:
    # The notation of gunicorn's tests/treq.py.
    data = raw.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n")
    data = data.replace(b"\\0", b"\000").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    return re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def gunicorn(repo: str) -> list[dict]:
    commit = git(repo, "rev-parse", "HEAD").strip()
    vectors = []
    for kind in ("valid", "invalid"):
        names = git(repo, "ls-tree", "--name-only", "HEAD", f"tests/requests/{kind}/").split()
        for path in sorted(n for n in names if n.endswith(".http")):
            expect = gunicorn_expect(git(repo, "show", f"HEAD:{path[:-5]}.py"))
            if expect is None:
                continue
            raw = subprocess.run(
                ["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True
            ).stdout
            vectors.append(
                {
                    "name": f"{kind}/{Path(path).stem}",
                    "source": f"benoitc/gunicorn@{commit[:12]}:{path}",
                    "data": gunicorn_data(raw).decode("latin-1"),
                    "expect": expect,
                }
            )
    return vectors


def main() -> None:
    """``extract.py CORPUS CHECKOUT ...``: rebuild each named corpus from its checkout."""
    args = sys.argv[1:]
    if not args or len(args) % 2 or any(c not in ("llhttp", "gunicorn") for c in args[::2]):
        sys.exit(__doc__)
    for name, repo in zip(args[::2], args[1::2], strict=True):
        vectors = llhttp(repo) if name == "llhttp" else gunicorn(repo)
        out = HERE / f"{name}.json"
        out.write_text(json.dumps(vectors, indent=1, ensure_ascii=True) + "\n")
        print(f"{out}: {len(vectors)} vectors")


if __name__ == "__main__":
    main()
