"""Runs doc blocks one by one inside one client's Python and reports what each did, as JSON lines.

Started by ``compare_official_docs.py`` as ``python -I docs_runner.py``, once under each client,
so it uses the standard library only and never imports the repository's package itself. It
imports ``kenar_api_client`` (whichever that Python has installed) once, then forks a child
per block, so that every block starts from the same freshly imported state and a block that
hangs or crashes cannot affect the next one.

Protocol: one JSON object per line on stdin, ``{"id", "filename", "source"}``; for each, one
JSON object per line on stdout: what the block printed (stdout and stderr), the warnings it
raised, and the exception that ended it (type, message, line of the block), or null.
"""

from __future__ import annotations

import builtins
import json
import os
import select
import signal
import sys
import tempfile
import traceback
import warnings
from typing import Any, Dict, List, Optional

#: Seconds a block may run before it is killed (a safety net, far above what a block needs).
BLOCK_TIMEOUT = 120.0


def described_exception(error: BaseException, filename: str) -> Dict[str, Any]:
    """An exception as the comparison sees it: its type, its text, the block line it came from."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    kind = type(error)
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(error), "line": line}


def run_block(source: str, filename: str, out_path: str) -> None:
    """In the forked child: run one block with fd 1 and 2 going to files, write the result, exit."""
    result: Dict[str, Any] = {"warnings": [], "exception": None}
    caught: List[Dict[str, Any]] = result["warnings"]

    def record_warning(
        message: Any, category: Any, file: str, lineno: int, *args: Any, **kwargs: Any
    ) -> None:
        # Kept as the default filters let them through; where they point matters only in the block.
        where = lineno if file == filename else None
        caught.append({"category": category.__name__, "message": str(message), "line": where})

    warnings.showwarning = record_warning  # type: ignore[assignment]  # the stdlib's hook, typed loosely
    # The docs use os.environ without importing os: a script of the user's would have it.
    namespace: Dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "os": os}
    try:
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - running docs is the point
    except BaseException as error:  # SystemExit and KeyboardInterrupt end a block too: outcomes
        result["exception"] = described_exception(error, filename)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def capture(source: str, filename: str) -> Dict[str, Any]:
    """Fork, run ``source`` in the child, and collect its result and output."""
    with tempfile.TemporaryDirectory() as tmp:
        out_path, stdout_path, stderr_path = (os.path.join(tmp, n) for n in ("result", "stdout", "stderr"))
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                for fd, path in ((1, stdout_path), (2, stderr_path)):
                    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(target, fd)
                    os.close(target)
                run_block(source, filename, out_path)
            except BaseException:  # the child must never return into the parent's loop
                code = 70
            finally:
                os._exit(code)
        result = wait_for(pid)
        if result is None and os.path.exists(out_path):
            with open(out_path, encoding="utf-8") as handle:
                result = json.load(handle)
        if result is None:
            result = {"warnings": [], "exception": {"type": "runner.crashed", "message": "", "line": None}}
        for name, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            with open(path, "rb") as handle:
                result[name] = handle.read().decode("utf-8", "replace")
        return result


def wait_for(pid: int) -> Optional[Dict[str, Any]]:
    """Wait for the child; None when it exited, a timeout result when it had to be killed."""
    read_end, write_end = os.pipe()
    # SIGCHLD wakes select() through the pipe: no polling, no sleeping.
    previous = signal.signal(signal.SIGCHLD, lambda *_: os.write(write_end, b"x"))
    try:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return None
            ready, _, _ = select.select([read_end], [], [], BLOCK_TIMEOUT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                message = f"killed after {BLOCK_TIMEOUT:.0f} s"
                return {
                    "warnings": [],
                    "exception": {"type": "runner.timeout", "message": message, "line": None},
                }
            os.read(read_end, 64)
    finally:
        signal.signal(signal.SIGCHLD, previous)
        os.close(read_end)
        os.close(write_end)


def main() -> int:
    import kenar_api_client

    print(json.dumps({"ready": kenar_api_client.__file__}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        result = capture(job["source"], job["filename"])
        result["id"] = job["id"]
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
