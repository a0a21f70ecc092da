"""run_walkthrough(..., until=): blocks whose last one serves in the foreground are stopped as Ctrl-C
does once the test's check answers; a server that exits first, or never answers, says so."""

from __future__ import annotations

import socket
import sys

from testbed.ports import free_port
from testbed.walkthrough import run_walkthrough


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_until_stops_a_foreground_server_once_it_answers_and_reports_one_that_does_not(tmp_path):
    port = free_port()
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- walkthrough: serve -->\n```bash\necho starting\n"
        f"{sys.executable} -m http.server {port} --bind 127.0.0.1\n```\n\n"
        "<!-- walkthrough: exits -->\n```bash\necho failing; exit 3\n```\n\n"
        "<!-- walkthrough: silent -->\n```bash\nsleep 600\n```\n"
    )
    served = run_walkthrough(readme, "serve", tmp_path / "serve", timeout=60, until=lambda: _answers(port))
    assert served.returncode == 0, served.output
    assert "starting" in served.output
    assert not _answers(port)  # stopped, not left running

    exits = run_walkthrough(readme, "exits", tmp_path / "exits", timeout=60, until=lambda: False)
    assert exits.returncode == 3 and "failing" in exits.output
    silent = run_walkthrough(readme, "silent", tmp_path / "silent", timeout=1, until=lambda: False)
    assert silent.returncode == 124
