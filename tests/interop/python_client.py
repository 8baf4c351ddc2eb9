#!/usr/bin/env python3
"""A scripted MCP client on the official Python SDK (`mcp`, pinned in requirements.txt), for interop tests.

It connects to a server, runs the steps given on the command line in order, and prints one JSON object per line
on stdout for each step, so a test can assert on them. Diagnostics go to stderr.

    python_client.py [OPTIONS] [STEPS] stdio -- COMMAND [ARGS...]
    python_client.py [OPTIONS] [STEPS] http URL

Options:
    --mode legacy|auto|2026-07-28   how to connect (default auto): `legacy` is the initialize handshake
                                    (2025-11-25), `auto` probes server/discover and falls back to initialize,
                                    `2026-07-28` speaks the stateless revision without a probe
                                    (so the initialize line has no serverInfo and empty capabilities)
    --header 'NAME: VALUE'          an HTTP header for every request (e.g. 'Authorization: Bearer ...')
    --timeout SECONDS               per-request read timeout (default 30)

Steps (any number, run in the order given; with none, the script runs --list):
    --list                          {"step":"list-tools","ok":true,"tools":[names...]}
    --call NAME ARGS_JSON           {"step":"call","name":..,"ok":true,"isError":..,"structuredContent":..,"text":..}
    --call-fail NAME ARGS_JSON      the same, labelled "call-fail": a call expected to fail; a JSON-RPC error
                                    answer is {"step":"call-fail","name":..,"ok":true,"error":{"code","message"}}
    --wait-list-changed SECONDS     arm a listener for notifications/tools/list_changed (under 2025-11-25 the
                                    session's notifications, over HTTP once the GET stream is open, printing
                                    {"step":"get-stream","ok":true,"open":..}; under 2026-07-28 a
                                    subscriptions/listen stream, printing {"step":"listen","ok":..,"honored":..}),
                                    print {"step":"ready-for-reload"}, then wait up to SECONDS and print
                                    {"step":"list-changed","received":true|false,"seconds":..}; on receipt the
                                    tools are listed again ({"step":"list-tools-after-reload",...})
    --task NAME ARGS_JSON           call a tool as a task (the `io.modelcontextprotocol/tasks` extension, SEP-2663,
                                    through the SDK's ClientExtension/ResultClaim hook): the call's answer
                                    {"resultType":"task","taskId",..} is resolved by polling `tasks/get` (header
                                    `Mcp-Name: <taskId>`, every pollIntervalMs) until the task leaves `working`;
                                    {"step":"task","name":..,"ok":true,"taskId":..,"polls":N,"status":"completed",
                                    "isError":..,"structuredContent":..,"text":..}. A `failed` task is "ok":false
                                    with the task's {"code","message"}, a `cancelled` one "ok":false too; a plain
                                    (non-task) answer is "ok":false ("type":"NotATask", with the result's fields).
                                    Needs 2026-07-28 (the SDK advertises and resolves claims only there): on a
                                    2025-11-25 session it is "ok":false ("type":"TasksNeed2026") without calling.
                                    --timeout also bounds the whole polling.

The tasks extension is always passed to Client(extensions=[...]); the SDK advertises it only at 2026-07-28, where a
--call of a tool the server runs as a task is resolved the same way (its line has no taskId).

The first line is always {"step":"initialize","ok":true,"protocolVersion":..,"serverInfo":..,"capabilities":..}
and the last {"step":"done","ok":true}. A step that raises prints "ok":false with "error" ({"code","message"} for
a JSON-RPC error, {"type","message"} otherwise); after that the script goes on with the next step, and exits 1
at the end. Exit code 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import sys
import time
import traceback
from typing import Any, Literal

import anyio

try:
    import httpx2
    import mcp_types as types
    from mcp import Client
    from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS
except ImportError as e:  # pragma: no cover
    print(json.dumps({"step": "import", "ok": False, "error": {"type": "ImportError", "message": str(e)}}), flush=True)
    sys.exit(3)

failures = 0


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, separators=(",", ":"), default=str), flush=True)


def error_of(e: BaseException) -> dict[str, Any]:
    if isinstance(e, MCPError):
        return {"code": e.error.code, "message": e.error.message, "data": e.error.data}
    # anyio task groups wrap errors: report the first real one.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
        if isinstance(e, MCPError):
            return {"code": e.error.code, "message": e.error.message, "data": e.error.data}
    return {"type": type(e).__name__, "message": str(e)}


def fail(step: str, e: BaseException, **extra: Any) -> None:
    global failures
    failures += 1
    print(f"python_client: step {step} failed:", file=sys.stderr)
    traceback.print_exception(e, file=sys.stderr)
    emit({"step": step, **extra, "ok": False, "error": error_of(e)})


def dump(model: Any) -> Any:
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return model


def call_result(step: str, name: str, result: types.CallToolResult) -> dict[str, Any]:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {
        "step": step,
        "name": name,
        "ok": True,
        "isError": bool(result.is_error),
        "structuredContent": result.structured_content,
        "text": "\n".join(texts) if texts else None,
    }


TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


class TaskCreated(types.Result):
    """The `tools/call` answer of a call run as a task (SEP-2663): {"resultType":"task","taskId",..}."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str | None = None
    last_updated_at: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class GetTaskParams(types.RequestParams):
    task_id: str


class GetTask(types.Request[GetTaskParams, Literal["tasks/get"]]):
    """`tasks/get` (SEP-2663), a method the SDK's 2026-07-28 core does not know.

    `name_param` makes `ClientSession.send_request` mirror params.taskId into the `Mcp-Name` header.
    """

    method: Literal["tasks/get"] = "tasks/get"
    params: GetTaskParams
    name_param = "taskId"


class TaskState(types.Result):
    """The `tasks/get` answer: the task's status, its CallToolResult once `completed`, its error once `failed`."""

    result_type: str = "complete"
    task_id: str
    status: str
    status_message: str | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskEnded(Exception):
    """A task that ended other than `completed` (cancelled, or a status this client does not handle)."""


class TasksNeed2026(Exception):
    """A --task step on a session below 2026-07-28, where the SDK neither advertises nor resolves tasks."""


class Tasks(ClientExtension):
    """The client side of `io.modelcontextprotocol/tasks`: resolves a "task" tools/call answer by polling."""

    identifier = TASKS_EXTENSION

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.reset()

    def reset(self) -> None:
        # What the last resolved task did, for the step's line.
        self.task_id: str | None = None
        self.polls = 0
        self.status: str | None = None

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self.resolve)]

    async def resolve(self, created: TaskCreated, ctx: ClaimContext) -> types.CallToolResult:
        self.task_id, self.status, self.polls = created.task_id, created.status, 0
        interval = created.poll_interval_ms
        deadline = time.monotonic() + self.max_seconds
        state: TaskState | None = None
        status = created.status
        while status == "working":
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {created.task_id} still working after {self.max_seconds:g} s")
            await anyio.sleep(max(interval or 500, 10) / 1000)
            state = await ctx.session.send_request(
                GetTask(params=GetTaskParams(task_id=created.task_id)),
                TaskState,
                request_read_timeout_seconds=ctx.read_timeout_seconds,
            )
            self.polls += 1
            if state.task_id != created.task_id:
                raise ValueError(f"tasks/get for {created.task_id} answered for task {state.task_id}")
            status = self.status = state.status
            interval = state.poll_interval_ms or interval
            print(f"python_client: task {created.task_id} poll {self.polls}: {status}", file=sys.stderr)
        if status == "completed":
            if state is None or state.result is None:
                raise ValueError(f"task {created.task_id} is completed but carries no result")
            return types.CallToolResult.model_validate(state.result, by_name=False)
        if status == "failed":
            error = (state.error if state else None) or {}
            raise MCPError(
                code=int(error.get("code", 0)),
                message=str(error.get("message", state.status_message if state else None)),
                data=error.get("data"),
            )
        message = state.status_message if state else created.status_message
        raise TaskEnded(f"task {created.task_id} ended {status!r}" + (f": {message}" if message else ""))


class ListChanged:
    """Counts notifications/tools/list_changed from the session's message handler."""

    def __init__(self) -> None:
        self.count = 0
        self.event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, Exception):
            print(f"python_client: transport error: {message!r}", file=sys.stderr)
            return
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()


class GetStreamOpened(logging.Handler):
    """Notices the SDK opening the HTTP GET stream, where a 2025-11-25 server sends list_changed.

    The SDK opens it in the background after `notifications/initialized` and only logs that it did.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.opened = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "GET SSE connection established":
            self.opened.set()


get_stream = GetStreamOpened()
_http_logger = logging.getLogger("mcp.client.streamable_http")
_http_logger.setLevel(logging.DEBUG)
_http_logger.addHandler(get_stream)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="auto", choices=["legacy", "auto", "2026-07-28"])
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout", type=float, default=30.0)
    steps = p.add_argument_group("steps")
    steps.add_argument("--list", dest="steps", action="append_const", const=("list",))
    steps.add_argument("--call", dest="steps", action="append", nargs=2, type=str, metavar=("NAME", "ARGS_JSON"))
    steps.add_argument("--call-fail", dest="fail_steps", action="append", nargs=2, metavar=("NAME", "ARGS_JSON"))
    steps.add_argument("--wait-list-changed", dest="wait_steps", action="append", type=float, metavar="SECONDS")
    steps.add_argument("--task", dest="task_steps", action="append", nargs=2, metavar=("NAME", "ARGS_JSON"))
    p.add_argument("transport", choices=["stdio", "http"])
    p.add_argument("target", nargs=argparse.REMAINDER, help="http: URL; stdio: -- COMMAND [ARGS...]")
    # argparse cannot keep the relative order of different options: rebuild it from argv.
    args = p.parse_args(argv)
    ordered: list[tuple[Any, ...]] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("stdio", "http"):
            break
        if a == "--list":
            ordered.append(("list",))
        elif a in ("--call", "--call-fail", "--task"):
            name, raw = argv[i + 1], argv[i + 2]
            try:
                arguments = json.loads(raw)
            except json.JSONDecodeError as e:
                p.error(f"{a} {name}: ARGS_JSON is not JSON: {e}")
            if not isinstance(arguments, dict):
                p.error(f"{a} {name}: ARGS_JSON must be an object")
            ordered.append(({"--call": "call", "--call-fail": "call-fail", "--task": "task"}[a], name, arguments))
            i += 2
        elif a == "--wait-list-changed":
            ordered.append(("wait", float(argv[i + 1])))
            i += 1
        elif a in ("--mode", "--header", "--timeout"):
            i += 1
        i += 1
    args.ordered = ordered or [("list",)]
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if args.transport == "http":
        if len(target) != 1:
            p.error("http takes exactly one URL")
    elif not target:
        p.error("stdio needs a command: stdio -- COMMAND [ARGS...]")
    args.target = target
    return args


async def wait_list_changed(client: Client, counter: ListChanged, seconds: float, http: bool) -> None:
    modern = client.protocol_version == "2026-07-28"
    before = counter.count
    start = time.monotonic()
    if modern:
        # 2026-07-28: change notifications arrive only on a subscriptions/listen stream.
        try:
            async with client.listen(tools_list_changed=True) as sub:
                emit({"step": "listen", "ok": True, "honored": dump(sub.honored)})
                emit({"step": "ready-for-reload"})
                start = time.monotonic()
                received = False
                with anyio.move_on_after(seconds):
                    async for event in sub:
                        print(f"python_client: listen event {event!r}", file=sys.stderr)
                        received = True
                        break
        except Exception as e:
            fail("listen", e)
            return
    else:
        if http:
            # A notification sent before the GET stream is open would be lost: wait for it (up to 5 s).
            with anyio.move_on_after(5):
                while not get_stream.opened.is_set():
                    await anyio.sleep(0.02)
            emit({"step": "get-stream", "ok": True, "open": get_stream.opened.is_set()})
        emit({"step": "ready-for-reload"})
        start = time.monotonic()
        with anyio.move_on_after(seconds):
            while counter.count == before:
                counter.event = anyio.Event()
                await counter.event.wait()
        received = counter.count > before
    emit({"step": "list-changed", "ok": True, "received": received, "seconds": round(time.monotonic() - start, 3)})
    if received:
        try:
            tools = await client.list_tools(cache_mode="refresh")
            emit({"step": "list-tools-after-reload", "ok": True, "tools": [t.name for t in tools.tools]})
        except Exception as e:
            fail("list-tools-after-reload", e)


async def run_task(client: Client, tasks: Tasks, name: str, arguments: dict[str, Any]) -> None:
    global failures
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        fail(
            "task",
            TasksNeed2026(
                f"tasks need protocol 2026-07-28 with this SDK (the session speaks {client.protocol_version}: "
                f"it neither advertises {TASKS_EXTENSION} nor resolves a task answer); use --mode auto or 2026-07-28"
            ),
            name=name,
        )
        return
    tasks.reset()
    try:
        result = await client.call_tool(name, arguments)
    except Exception as e:
        fail("task", e, name=name, taskId=tasks.task_id, polls=tasks.polls, status=tasks.status)
        return
    fields = call_result("task", name, result)
    line = {"step": "task", "name": name, "ok": True, "taskId": tasks.task_id, "polls": tasks.polls}
    line |= {"status": tasks.status, **{k: fields[k] for k in ("isError", "structuredContent", "text")}}
    if tasks.task_id is None:
        failures += 1
        line["ok"] = False
        line["error"] = {"type": "NotATask", "message": "the server answered tools/call with a plain result, not a task"}
    emit(line)


async def run(args: argparse.Namespace) -> None:
    counter = ListChanged()
    headers: dict[str, str] = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            raise SystemExit(f"--header {h!r}: expected 'NAME: VALUE'")
        headers[name.strip()] = value.strip()

    http_client = None
    if args.transport == "http":
        http_client = create_mcp_http_client(
            headers=headers or None, timeout=httpx2.Timeout(args.timeout, read=max(args.timeout, 300.0))
        )
        server: Any = streamable_http_client(args.target[0], http_client=http_client)
    else:
        server = StdioServerParameters(command=args.target[0], args=args.target[1:], env=dict(os.environ))

    tasks = Tasks(max_seconds=args.timeout)
    client = Client(
        server,
        extensions=[tasks],
        mode=args.mode,
        read_timeout_seconds=args.timeout,
        message_handler=counter,
        client_info=types.Implementation(name="are-interop-python", version="1"),
        cache=None,
    )
    try:
        async with client:
            emit(
                {
                    "step": "initialize",
                    "ok": True,
                    "protocolVersion": client.protocol_version,
                    "serverInfo": dump(client.server_info),
                    "capabilities": dump(client.server_capabilities),
                }
            )
            for step in args.ordered:
                kind = step[0]
                if kind == "list":
                    try:
                        tools = await client.list_tools()
                        emit({"step": "list-tools", "ok": True, "tools": [t.name for t in tools.tools]})
                    except Exception as e:
                        fail("list-tools", e)
                elif kind in ("call", "call-fail"):
                    _, name, arguments = step
                    try:
                        emit(call_result(kind, name, await client.call_tool(name, arguments)))
                    except MCPError as e:
                        if kind == "call-fail":
                            # An expected failure may be a JSON-RPC error (unknown tool, bad arguments): an answer.
                            emit({"step": kind, "name": name, "ok": True, "error": error_of(e)})
                        else:
                            fail(kind, e, name=name)
                    except Exception as e:
                        fail(kind, e, name=name)
                elif kind == "task":
                    await run_task(client, tasks, step[1], step[2])
                elif kind == "wait":
                    await wait_list_changed(client, counter, step[1], args.transport == "http")
            emit({"step": "done", "ok": failures == 0})
    except Exception as e:
        fail("initialize", e)
    finally:
        if http_client is not None:
            await http_client.aclose()


def main() -> None:
    args = parse_args(sys.argv[1:])
    anyio.run(run, args)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
