"""Run ``bmoe.cli.main`` in this process, as the ``bmoe`` command would run: its exit status and output.

In-process, the code under test is the one this test session imports (a worktree's ``src`` on
``PYTHONPATH``), and no interpreter start is paid per command. ``bmoe_here`` takes the arguments of
``tests.cli.helpers.bmoe`` (the real subprocess), so a test module switches by its import line
(``from tests.cli.in_process import bmoe_here as bmoe``). What a command changes in the process is put back
afterwards (the environment, which is the subprocess's, the working directory, torch's thread count, signal
handlers, the consoles' width); an exception that would end the process is its traceback on stderr and exit
status 1; the warnings it raises are printed on its stderr as Python would. Keep the real subprocess for
what needs a process of its own: signals, FIFOs, time limits, and two runs compared across processes (hash
randomisation differs between them).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import traceback
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import torch

import bmoe as bmoe_package
from bmoe.cli import main
from bmoe.console import console, err_console
from tests.cli.helpers import command_environment

# What `python -m bmoe` has in sys.argv[0] and sys.modules["__main__"]: click names the program from them.
MAIN_FILE = str(Path(bmoe_package.__file__).with_name("__main__.py"))
AS_MAIN = types.ModuleType("__main__")
AS_MAIN.__package__ = "bmoe"
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Python's default warning filters outside __main__: what a `python -m bmoe` process would print.
QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: Path | None, columns: int) -> Iterator[None]:
    """Run the body as a fresh process would see it, and put back what it changes."""
    threads = torch.get_num_threads()
    handlers = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    widths = [(c, c._width) for c in (console, err_console)]  # rich reads COLUMNS once, when a console is made
    try:
        with mock.patch.dict(os.environ, {**command_environment(columns), **env}, clear=True), \
                contextlib.chdir(cwd if cwd is not None else Path.cwd()):
            for c, _ in widths:
                c.width = columns
            yield
    finally:
        torch.set_num_threads(threads)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for c, width in widths:
            c._width = width


@contextlib.contextmanager
def _as_main() -> Iterator[None]:
    """``sys.modules["__main__"]`` as under ``python -m bmoe`` (only that entry: patching the whole of
    ``sys.modules`` would drop the modules a command imports, and an extension module cannot load twice)."""
    main_module = sys.modules["__main__"]
    sys.modules["__main__"] = AS_MAIN
    try:
        yield
    finally:
        sys.modules["__main__"] = main_module


def bmoe_here(*args: str | Path, cwd: Path | None = None, timeout: float = 300, columns: int = 200,
         env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``bmoe ARGS`` through ``bmoe.cli.main`` in this process, shaped like a finished process (for
    ``tests.cli.helpers.assert_user_error``). ``timeout`` is accepted for the subprocess helper's callers and
    not enforced: a command that may hang belongs in a subprocess. ``env``: variables set for the command."""
    del timeout
    argv = [MAIN_FILE, *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with _process_state(env or {}, cwd, columns), mock.patch.object(sys, "argv", argv), \
            _as_main(), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("default")
        for category in QUIET_WARNINGS:
            warnings.simplefilter("ignore", category)
        try:
            main()
        except SystemExit as exit_info:
            code = exit_info.code
        except Exception:  # the interpreter would print it and exit 1
            traceback.print_exc(file=err)
            code = 1
        for warning in raised:
            err.write(warnings.formatwarning(warning.message, warning.category, warning.filename, warning.lineno))
    if isinstance(code, str):  # sys.exit("message"): printed on stderr, status 1
        err.write(code + "\n")
    status = 0 if code is None else code if isinstance(code, int) else 1
    return subprocess.CompletedProcess(["bmoe", *argv[1:]], status, out.getvalue(), err.getvalue())

