"""Every parser on recorded real-format outputs, good and bad, and on garbage."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpu_healthcheck import parsers, xid

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_query_csv_strips_units_and_reads_na():
    rows = parsers.parse_query_csv(text("nvidia-smi-query-p5-good.csv"))
    assert len(rows) == 8
    assert rows[3] == {
        "index": "3",
        "name": "NVIDIA H100 80GB HBM3",
        "pci.bus_id": "00000000:86:00.0",
        "serial": "1654123451",
        "driver_version": "570.172.08",
        "memory.total": "81559 MiB",
        "pcie.link.width.current": "16",
        "pcie.link.width.max": "16",
    }
    assert parsers.parse_query_csv("index, retired_pages.pending\n0, [N/A]\n") == [
        {"index": "0", "retired_pages.pending": None}
    ]
    missing = parsers.parse_query_csv(text("nvidia-smi-query-p5-missing-gpu.csv"))
    assert [row["index"] for row in missing] == ["0", "1", "2", "4", "5", "6", "7"]
    with pytest.raises(parsers.ParseError, match="has 2 fields, header 3"):
        parsers.parse_query_csv("a, b, c\n1, 2\n")


def test_smi_query_nests_sections_per_gpu():
    good = parsers.parse_smi_query(text("nvidia-smi-q-ecc-p5-good.txt"))
    assert len(good) == 8 and "00000000:A8:00.0" in good
    gpu = good["00000000:64:00.0"]
    assert gpu["ECC Errors/Volatile/DRAM Correctable"] == "2"
    assert gpu["Retired Pages/Pending Page Blacklist"] is None  # N/A on H100
    assert gpu["Remapped Rows/Bank Remap Availability Histogram/Max"] == "2560 bank(s)"
    bad = parsers.parse_smi_query(text("nvidia-smi-q-ecc-p5-bad.txt"))
    assert bad["00000000:86:00.0"]["Remapped Rows/Remapping Failure Occurred"] == "Yes"
    assert bad["00000000:A8:00.0"]["ECC Errors/Volatile/DRAM Uncorrectable"] == "2"
    with pytest.raises(parsers.ParseError, match="no 'GPU 00000000"):
        parsers.parse_smi_query(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
        )


def test_topology_matrix():
    good = parsers.parse_topology(text("nvidia-smi-topo-p5-good.txt"))
    assert sorted(good) == [f"GPU{i}" for i in range(8)]
    assert good["GPU0"]["GPU7"] == "NV18" and good["GPU5"]["GPU5"] == "X"
    down = parsers.parse_topology("\x1b[4m" + text("nvidia-smi-topo-p5-nvlink-down.txt"))
    assert set(down["GPU3"].values()) == {"X", "SYS"} and down["GPU0"]["GPU3"] == "SYS"
    with pytest.raises(parsers.ParseError, match="no 'GPU0 GPU1"):
        parsers.parse_topology("No devices were found")


def test_dcgm_diag_results():
    passing = parsers.parse_dcgm_diag(text("dcgmi-diag-r2-pass.json"))
    assert len(passing) == 25 and {r.status for r in passing} == {"Pass"}
    failing = [
        r for r in parsers.parse_dcgm_diag(text("dcgmi-diag-r2-memory-fail.json")) if r.status != "Pass"
    ]
    assert len(failing) == 1
    assert (failing[0].category, failing[0].test, failing[0].gpus) == ("Hardware", "GPU Memory", "2")
    assert "DBE ECC error detected on GPU 2" in failing[0].warnings[0]
    warned = "Unable to connect to nv-hostengine\n" + text("dcgmi-diag-r2-pcie-warn.json")  # text before JSON
    assert [r.status for r in parsers.parse_dcgm_diag(warned) if r.status != "Pass"] == ["Warn"]
    for garbage, message in (
        ("Error: unable to establish a connection", "no JSON object"),
        ('{"DCGM GPU Diagnostic": {}}', "did not run"),
    ):
        with pytest.raises(parsers.ParseError, match=message):
            parsers.parse_dcgm_diag(garbage)


def test_xid_lines_and_their_meaning():
    assert parsers.parse_xid_lines(text("dmesg-clean.txt")) == []
    events = parsers.parse_xid_lines(text("dmesg-xid79.txt"))
    assert [(e.xid, e.pci, e.time) for e in events] == [
        (79, "0000:86:00", "8123.447620"),
        (45, "0000:53:00", "8131.003112"),
    ]
    assert events[0].message.endswith("GPU has fallen off the bus.")
    assert [e.xid for e in parsers.parse_xid_lines(text("dmesg-xid13-app.txt"))] == [13, 13, 43]
    assert (
        xid.classify(79)[0] == "isolate"
        and xid.classify(13)[0] == "monitor"
        and xid.classify(48)[0] == "reboot"
    )
    assert xid.classify(999) == xid.UNKNOWN


def test_fi_info_counts_each_device_once():
    domains = parsers.parse_fi_info_domains(text("fi_info-efa-p5-32.txt"))
    assert len(domains) == 32 and domains[0].startswith("rdmap") and not domains[0].endswith("-rdm")
    assert len(parsers.parse_fi_info_domains(text("fi_info-efa-p5-31.txt"))) == 31
    assert parsers.parse_fi_info_domains("provider: tcp\n    domain: eth0\n") == []


def test_pingpong_rows():
    rows = parsers.parse_pingpong(text("fi_pingpong-efa-client.txt"))
    assert [row["bytes"] for row in rows] == [64, 256, 1024, 4096, 65536, 1048576]
    assert rows[-1]["mb_per_s"] == 3277.63
