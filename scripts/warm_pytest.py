"""A warm pytest starter for scripts/mutate.py: imports the heavy third-party libraries once, then forks one pytest
run per request, so that each of the many short runs of a mutation check skips their ~4 s of imports.

Protocol, one JSON object per line. Request on stdin: ``{"id", "cwd", "env", "args", "out"}``; the run's stdout and
stderr go to the file ``out``. Replies on stdout: ``{"id", "pid"}`` once forked (the run leads its own process
group, so the caller can kill it whole), then ``{"id", "rc"}`` when it ends (a negative rc: killed by that signal).

Nothing of the repository is imported here: each run imports the project's packages afresh from its own ``cwd``
(first on ``sys.path``, as ``PYTHONPATH`` would put it), after the fork. The loop is single-threaded, so a fork
never copies a lock another thread holds.
"""

from __future__ import annotations

import json
import os
import select
import sys

import hypothesis  # noqa: F401  the heavy libraries the tests import, loaded once for every run
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import pytest
import torch  # noqa: F401


def _child(req: dict) -> None:
    """In the forked process: become a fresh ``python -m pytest`` run in ``cwd``; never returns."""
    rc = 3
    try:
        os.setsid()
        fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = sys.stdout
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        # as ``python -m pytest`` there: the working directory first, then PYTHONPATH (this script's folder out)
        sys.path[0:1] = [os.getcwd(), *(p for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p)]
        sys.dont_write_bytecode = req["env"].get("PYTHONDONTWRITEBYTECODE") == "1"
        sys.argv = ["pytest", *req["args"]]
        rc = int(pytest.main(req["args"]))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001  reported in the run's output, never back in the starter
        print(f"warm_pytest: {type(e).__name__}: {e}", flush=True)
    finally:
        try:
            sys.stdout.flush()
        finally:
            os._exit(rc)


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    running: dict[int, object] = {}
    buffer, stdin_open = b"", True
    while stdin_open or running:
        if stdin_open and select.select([0], [], [], 0.05)[0]:
            chunk = os.read(0, 65536)
            stdin_open = bool(chunk)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(req)
                running[pid] = req["id"]
                _reply({"id": req["id"], "pid": pid})
        elif not stdin_open:
            select.select([], [], [], 0.05)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            rc = os.waitstatus_to_exitcode(status)
            _reply({"id": running.pop(pid), "rc": rc})


if __name__ == "__main__":
    main()
