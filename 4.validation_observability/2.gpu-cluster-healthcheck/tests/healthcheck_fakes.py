"""Stand-ins for GPU and EFA tools that print recorded outputs (tests/fixtures).

``FakeTools`` replaces the command runner in-process; ``install_fake_tools`` writes executables for
subprocess and Slurm tests, which print the "bad" recording on a node whose fault file exists
(``<fault_dir>/<SLURMD_NODENAME>``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from gpu_healthcheck.commands import CommandResult

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# A healthy p5.48xlarge, tool by tool (key: program plus the first distinguishing argument).
P5_GOOD = {
    "nvidia-smi --query-gpu": "nvidia-smi-query-p5-good.csv",
    "nvidia-smi -q": "nvidia-smi-q-ecc-p5-good.txt",
    "nvidia-smi topo": "nvidia-smi-topo-p5-good.txt",
    "dmesg": "dmesg-clean.txt",
    "fi_info": "fi_info-efa-p5-32.txt",
}


class FakeTools:
    """A command runner answering from recorded outputs; unknown programs are 'not found'."""

    def __init__(self, outputs: Mapping[str, str | CommandResult], pingpong: str | None = None) -> None:
        self.outputs = dict(outputs)
        self.pingpong = pingpong
        self.calls: list[tuple[str, ...]] = []

    def _answer(self, argv: Sequence[str]) -> CommandResult:
        for key in sorted(self.outputs, key=len, reverse=True):
            program, *words = key.split()
            if argv[0] == program and all(any(arg.startswith(w) for arg in argv[1:]) for w in words):
                value = self.outputs[key]
                if isinstance(value, CommandResult):
                    return value
                return CommandResult(tuple(argv), True, 0, (FIXTURES / value).read_text(), "")
        return CommandResult(tuple(argv), found=False)

    def run(self, argv: Sequence[str], timeout: float = 60.0, extra: Sequence[str] = ()) -> CommandResult:
        self.calls.append(tuple(argv))
        return self._answer(argv)

    def run_pair(
        self, server: Sequence[str], client: Sequence[str], **_: object
    ) -> tuple[CommandResult, CommandResult]:
        if self.pingpong is None:
            return CommandResult(tuple(server), False), CommandResult(tuple(client), False)
        text = (FIXTURES / self.pingpong).read_text() if self.pingpong.endswith(".txt") else ""
        code = 0 if text else 1
        return CommandResult(tuple(server), True, code, "", ""), CommandResult(
            tuple(client), True, code, text, self.pingpong if not text else ""
        )


_STUB = """#!/bin/bash
# Stand-in for {tool}: prints a recorded output chosen by the arguments and by a per-node fault file.
state=good
if [[ -e "{fault_dir}/${{SLURMD_NODENAME:-local}}" ]]; then state=bad; fi
key=default
case " $* " in
    *" --query-gpu"*) key=query ;;
    *" topo "*) key=topo ;;
    *" -q "*) key=q ;;
esac
cat "{data_dir}/$state/{tool}.$key"
"""


def install_fake_tools(
    folder: Path, good: Mapping[str, str], bad: Mapping[str, str], fault_dir: Path
) -> Path:
    """Write stub executables into ``folder/bin``; returns that bin folder.

    ``good``/``bad`` map ``program[ subcommand]`` keys (as in P5_GOOD) to fixture names; a key missing
    from ``bad`` falls back to ``good``.
    """
    bin_dir, data = folder / "bin", folder / "data"
    fault_dir.mkdir(parents=True, exist_ok=True)
    keys = {"--query-gpu": "query", "-q": "q", "topo": "topo"}
    for state, mapping in (("good", good), ("bad", {**good, **bad})):
        (data / state).mkdir(parents=True, exist_ok=True)
        for key, fixture in mapping.items():
            tool, _, sub = key.partition(" ")
            shutil.copy(FIXTURES / fixture, data / state / f"{tool}.{keys.get(sub, 'default')}")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in {key.split()[0] for key in good}:
        stub = bin_dir / tool
        stub.write_text(_STUB.format(tool=tool, fault_dir=fault_dir, data_dir=data))
        stub.chmod(0o755)
    return bin_dir
