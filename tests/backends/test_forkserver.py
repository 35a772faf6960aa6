"""Workers started from a fork server — ``processes`` in a program with other threads alive —
do not each run the program's main script again: the fork server runs it once, and every worker
it forks finds it loaded (CPython's own ``"__main__"`` preload never does; see
``truepar.backends.forkserver_main``). What the script defines still reaches the workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os
    import threading
    from pathlib import Path

    import truepar
    from shapes import square  # beside the script, not in the working folder

    # Each time this script runs, as the program or as a worker's __mp_main__, it says so.
    with Path(os.environ["IMPORT_LOG"]).open("a") as log:
        log.write(f"{__name__} {os.getpid()}\\n")


    def cube(x):
        return x * square(x)


    if __name__ == "__main__":
        # Another thread alive: a fork would be unsafe, so workers come from a fork server.
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        for _ in range(2):  # every run starts its own workers
            result = truepar.map(cube, range(6), backend="processes", workers=3)
            assert result.values == [x**3 for x in range(6)], result.values
            assert len({s.pid for s in result.trace.spans}) == 3, result.trace.spans
        print("ok")
    """
)


def test_fork_server_workers_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    script = app / "program.py"
    script.write_text(SCRIPT)
    (app / "shapes.py").write_text("def square(x):\n    return x * x\n")
    log = tmp_path / "imports.log"
    env = {**os.environ, "IMPORT_LOG": str(log)}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # the program, its fork server and workers: one group to reap
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0 and out.strip().endswith("ok"), out
    names = [line.split()[0] for line in log.read_text().splitlines()]
    # The program itself, and the fork server once — not once for each of the 6 workers.
    assert names == ["__main__", "__mp_main__"], names
