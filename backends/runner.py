"""Run one conversion in its own process (forked from a warm one: ``backends.warm``) and
publish its folder without losing old results.

Used by the host CLI (Python 3.11, with the route env's python) and by ``backends.batch``
inside a tox env (with its own python). Runs on Python 3.7.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import threading

from backends.base import BadInput, last_line
from backends.builds import (FAILED_RECORD, OK, PROGRESS, ConversionRecord, read_record,
                             route_dir, write_record)
from backends import warm
from backends.worker import EXIT_BAD_INPUT, hook_paths

DEFAULT_TIMEOUT = 1800


def convert_isolated(python, route, model, out_root, samples=32000, weights=None, hooks=None,
                     timeout=DEFAULT_TIMEOUT, env=None, extra_args=(), name=None, inputs=None,
                     outputs=None, variant=None):
    """Convert in a child process; return the conversion record (status ok or failed).

    ``model`` is a zoo name or another source spec (``backends.sources``); ``name`` the model
    id its folder takes (default: the spec's own); ``inputs`` an npz of its inputs and
    ``outputs`` its output names, for models other than the zoo's.

    The child writes into a staging folder. A successful run replaces the route folder in
    one rename. A failed run never replaces an earlier good one: with none, its
    record becomes the folder, else it is kept beside it as ``conversion.failed.json``.
    Bad input and an interrupt (KeyboardInterrupt, re-raised) leave nothing behind: the
    staging folder and any folder this call created are removed. Staging folders of
    processes that are gone (an earlier run killed hard) are swept first.
    ``extra_args``: further worker options (e.g. ``--submodule``, used by diagnose).
    ``variant``: build that variant into ``<route>+<variant>/`` (``backends.variants``).
    """
    from backends.sources import parse
    name = name or parse(model).default_name
    final = route_dir(out_root, name, route, variant)
    parent = os.path.dirname(final)
    created = make_dirs(parent)
    sweep_stale_staging(parent)
    staging = os.path.join(parent, ".{}.staging-{}".format(os.path.basename(final), os.getpid()))
    shutil.rmtree(staging, ignore_errors=True)
    args = ["--route", route, "--model", model, "--name", name, "--out", staging,
            "--samples", str(samples)]
    if inputs:
        args += ["--inputs", inputs]
    if outputs:
        args += ["--outputs", ",".join(outputs)]
    if weights:
        args += ["--weights", weights]
    for path in hook_paths(hooks):
        args += ["--hooks", path]
    if variant:
        args += ["--variant", variant]
    args += list(extra_args)
    try:
        code, stderr, toolchain_seconds = warm.run(python, route, args, timeout, env)
        relay_warnings(stderr)
        if code == EXIT_BAD_INPUT:   # the worker's one line is "error: <message>"
            raise BadInput(_without_prefix(last_line(stderr)) or "the worker rejected the request")
    except (BadInput, KeyboardInterrupt):   # warm.run has ended the child by now
        shutil.rmtree(staging, ignore_errors=True)
        remove_if_empty(created)
        raise

    record = read_record(staging)
    if record is None or code != 0 and record.ok:
        record = crash_record(route, name, samples, staging, code, stderr)
        record.variant = variant
    elif toolchain_seconds is not None and record.get("seconds"):
        # This call started the warm process: its import was this conversion's to wait for.
        seconds = record["seconds"]
        seconds["load_toolchain"] = round(seconds.get("load_toolchain", 0.0) + toolchain_seconds, 4)
    if not record.ok and code not in (0, 1):
        record.setdefault("stderr_tail", tail(stderr))
    publish(staging, final, record)
    return record


def _without_prefix(line, prefix="error: "):
    return line[len(prefix):] if line.startswith(prefix) else line


def relay_warnings(stderr):
    """The worker's ``warning:`` lines (e.g. a hook that matches no op) are for the user."""
    for line in (stderr or "").splitlines():
        if line.startswith("warning: "):
            sys.stderr.write(line + "\n")


@contextlib.contextmanager
def interrupts_once():
    """Within: Ctrl-C (SIGINT) and SIGTERM raise KeyboardInterrupt once; later ones are
    ignored, so that the clean-up they started is not cut short (tox follows SIGINT with
    SIGTERM). The previous handlers come back on exit."""
    numbers = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; it gets the interrupt anyway
        return
    previous = dict((n, signal.getsignal(n)) for n in numbers)

    def interrupted(signum, frame):
        for number in numbers:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt
    for number in numbers:
        signal.signal(number, interrupted)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


STAGING = re.compile(r"^\.(?P<route>.+)\.staging-(?P<pid>\d+)$")


def sweep_stale_staging(folder):
    """Remove ``.<route>.staging-<pid>`` folders whose process no longer exists."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = STAGING.match(name)
        if match and not process_exists(int(match.group("pid"))):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process
        return True
    return True


def make_dirs(path):
    """os.makedirs, returning the folders it created (innermost last)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    os.makedirs(missing[0] if missing else path, exist_ok=True)
    return list(reversed(missing))


def remove_if_empty(folders):
    for folder in reversed(folders):   # innermost first
        try:
            os.rmdir(folder)
        except OSError:                # not empty (someone else wrote there), or gone
            return


def crash_record(route, model, samples, staging, code, stderr):
    """The child died without writing its record: a signal, a timeout or an uncaught error."""
    stage = None
    try:
        with open(os.path.join(staging, PROGRESS)) as f:
            stage = f.read().strip() or None
    except (IOError, OSError):
        pass
    if code is None:
        error = last_line(stderr)
    elif code < 0:
        error = "converter process killed by signal {} ({})".format(-code, signal_name(-code))
    else:
        error = "converter process exited with code {}: {}".format(code, last_line(stderr))
    record = ConversionRecord(route=route, model=model, samples=samples, stage=stage, error=error)
    record.update({"exit_code": code, "stderr_tail": tail(stderr)})
    if code is not None and code < 0:
        record["signal"] = signal_name(-code)
    return record


def record_failure(out_root, name, route, stage, error, **facts):
    """A route that failed before its converter ran (e.g. its requirements would not
    install), published like any failed conversion."""
    final = route_dir(out_root, name, route)
    staging = os.path.join(os.path.dirname(final), ".{}.staging-{}".format(route, os.getpid()))
    record = ConversionRecord(route=route, model=name, stage=stage, error=error)
    record.update(facts)
    publish(staging, final, record)
    return record


def publish(staging, final, record):
    os.makedirs(staging, exist_ok=True)
    progress = os.path.join(staging, PROGRESS)
    if os.path.exists(progress):
        os.remove(progress)
    earlier = read_record(final)
    if record.status != OK and earlier is not None and earlier.ok:
        # Keep the earlier conversion; put this failure beside it.
        write_record(final, record, FAILED_RECORD)
        shutil.rmtree(staging, ignore_errors=True)
        return
    write_record(staging, record)
    retired = final + ".old-{}".format(os.getpid())
    if os.path.exists(final):
        os.rename(final, retired)
    os.rename(staging, final)
    shutil.rmtree(retired, ignore_errors=True)


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal {}".format(number)


def tail(text, lines=15):
    return "\n".join((text or "").rstrip().splitlines()[-lines:])
