"""Warm starts: the conversions of one run that share a route env fork from one process
that has imported the route's toolchain already.

Importing a toolchain is most of a small model's conversion (here: coremltools 9 with torch
4-5 s, ExecuTorch with its Core ML delegate 8 s), and a run often converts several times in
one env: the zoo batch, diagnose's descent, the route tests. A child forked right after the
import is as isolated as a fresh process: its own exit code or signal, its own stderr, no
state left by an earlier conversion. Linux only (macOS's Core ML frameworks are not
fork-safe); elsewhere, or with ``COREML_ROUTES_COLD=1``, every conversion starts its own
interpreter. Runs on Python 3.7.

    python -m backends.warm ROUTE      (started by ``run``; one JSON request a line on stdin)
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict

MAX_IDLE = 2             # a run moves from env to env: keep the last two warm, not all six
_idle = OrderedDict()    # (python, cwd, env) -> _Server no thread is using
_lock = threading.Lock()


def enabled():
    return sys.platform.startswith("linux") and not os.environ.get("COREML_ROUTES_COLD")


def run(python, route, args, timeout=None, env=None):
    """``python -m backends.worker ARGS``: (returncode, stderr, toolchain_seconds).

    returncode is None after ``timeout`` seconds (the child is killed), -N after signal N.
    toolchain_seconds: what starting a warm process for this call spent importing the
    toolchain (the child's own record then shows none), else None. Thread-safe: a warm
    process serves one conversion at a time; a thread that finds it busy starts another."""
    env = dict(os.environ if env is None else env)
    if not enabled():
        return _cold(python, args, timeout, env) + (None,)
    # Not the route: v9 and v9-export share an env, and a child imports what else it needs.
    key = (python, os.getcwd(), tuple(sorted(env.items())))
    with _lock:
        server, started = _idle.pop(key, None), None
    if server is None or not (server.cold or server.alive()):
        server = _Server(python, route, env, timeout)
        started = server.toolchain_seconds     # a cold one returns None below
    try:
        if server.cold:
            return _cold(python, args, timeout, env) + (None,)
        return server.convert(args, env, timeout) + (started,)
    finally:
        _keep(key, server)


def _keep(key, server):
    with _lock:
        spare = [_idle.pop(key)] if key in _idle else []   # another thread kept one meanwhile
        _idle[key] = server
        while len(_idle) > MAX_IDLE:
            spare.append(_idle.popitem(last=False)[1])
    for other in spare:
        other.close()


@atexit.register
def close_all():
    with _lock:
        servers = list(_idle.values())
        _idle.clear()
    for server in servers:
        server.close()


def _cold(python, args, timeout, env):
    cmd = [python, "-m", "backends.worker"] + list(args)
    try:
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, "timed out after {} s".format(timeout)
    return done.returncode, done.stderr


class _Server(object):
    """The client's side of one warm process."""

    def __init__(self, python, route, env, timeout=None):
        self.proc = subprocess.Popen([python, "-m", "backends.warm", route], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        self._unread = b""
        ready = self._reply(timeout) or {"cold": "the warm process did not start in time"}
        self.toolchain_seconds = ready.get("toolchain_seconds")
        self.cold = ready.get("cold")
        if self.cold:    # each conversion starts afresh and meets the problem on its own
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc.poll() is None

    def convert(self, args, env, timeout):
        handle, stderr_path = tempfile.mkstemp(prefix="worker-", suffix=".stderr")
        os.close(handle)
        pid = None
        try:
            self._send({"args": list(args), "env": env, "cwd": os.getcwd(),
                        "stderr": stderr_path})
            started = self._reply(None)
            if started is None:
                return None, "the route env's warm process ended unexpectedly"
            pid = started["pid"]
            done = self._reply(timeout)
            if done is None:
                self._end(pid)
                return None, "timed out after {} s".format(timeout)
            with open(stderr_path) as f:
                return done["returncode"], f.read()
        except BaseException:   # Ctrl-C: end the child before the caller cleans up
            self._interrupted(pid)
            raise
        finally:
            os.remove(stderr_path)

    def close(self):
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def _interrupted(self, pid):
        """Interrupted mid-request: end the child (the server names it as soon as it has
        forked) and read the replies up to its end, so the next request meets its own. A
        server that names no child in time is ended instead."""
        if pid is None:
            started = self._reply(5)
            pid = started.get("pid") if started else None
        if pid is None:
            self.proc.kill()
            self.proc.wait()
        else:
            self._end(pid)

    def _end(self, pid):
        """Kill the child and wait until the server has reaped it."""
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        self._reply(None)

    def _send(self, message):
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    def _reply(self, timeout):
        """The server's next message; None at timeout or when it has ended. Read unbuffered,
        so that select sees what is still to come (two replies can arrive in one read)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._unread:
            if deadline is not None:
                wait = max(0.0, deadline - time.monotonic())
                if not select.select([fd], [], [], wait)[0]:
                    return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._unread += chunk
        line, _, self._unread = self._unread.partition(b"\n")
        return json.loads(line.decode())


# ---------------------------------------------------------------- the warm process itself

def serve(route):
    """Import the route's toolchain, then fork a child per request, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C ends the conversion, not the env
    replies = os.fdopen(os.dup(1), "w")
    _redirect(1, os.devnull, os.O_WRONLY)           # the toolchain's prints stay off the pipe
    start = time.perf_counter()
    try:
        import backends
        backends.get(route).load_toolchain()
    except Exception:    # each child imports it again and records the failure as usual
        pass
    ready = {"toolchain_seconds": round(time.perf_counter() - start, 4)}
    if threading.active_count() > 1:     # a forked child gets none of them: start cold
        ready["cold"] = "the toolchain started Python threads"
    _say(replies, ready)
    if "cold" in ready:
        return
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(_child(request, replies))
        _say(replies, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _say(replies, {"returncode": code})


def _child(request, replies):
    """Run the worker as ``python -m backends.worker`` would; return its exit code."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.close(replies.fileno())
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _redirect(0, os.devnull, os.O_RDONLY)
        _redirect(2, request["stderr"], os.O_WRONLY | os.O_TRUNC)
        from backends import worker
        sys.argv = ["backends.worker"] + request["args"]
        code = worker.main(request["args"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _redirect(fd, path, flags):
    opened = os.open(path, flags)
    os.dup2(opened, fd)
    os.close(opened)


def _say(stream, message):
    stream.write(json.dumps(message) + "\n")
    stream.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
    sys.stdout.flush()
    os._exit(0)      # skip the toolchain's slow teardown: nothing is left to write
