"""The ``harness`` process ends at once after its command (``harness.cli.exit_now``), as ``sys.exit`` would end it.

Exit handlers run, non-daemon threads are joined, buffered output reaches the pipes, and the exit
status is the command's; called in-process with ``argv`` (tests), ``main`` returns instead.
"""

import subprocess
import sys
import textwrap

from harness.cli import main

SCRIPT = textwrap.dedent(
    """
    import atexit, sys, threading, time
    import harness.cli

    atexit.register(lambda: print("atexit ran", flush=False))
    def late():
        time.sleep(0.2)
        sys.stdout.write("thread joined\\n")
    threading.Thread(target=late).start()
    sys.stdout.write("buffered output\\n")  # not flushed by hand
    sys.argv = ["harness", *sys.argv[1:]]
    harness.cli.main()
    print("never reached")
    """
)


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_process_ends_with_the_command_status_after_exit_handlers_and_flushed_output():
    done = _harness("--version")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "buffered output" and lines[1].startswith("harness ")
    assert lines[2:] == ["thread joined", "atexit ran"]  # as sys.exit: threads joined, then the exit handlers
    assert "never reached" not in done.stdout


def test_an_error_keeps_its_line_and_exit_status():
    done = _harness("run", "no_such_protocol_file.yaml")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("Error:")
    assert "atexit ran" in done.stdout and "never reached" not in done.stdout


def test_called_with_arguments_main_returns_the_status():
    assert main(["--version"]) == 0
    assert main(["run", "no_such_protocol_file.yaml"]) == 2
