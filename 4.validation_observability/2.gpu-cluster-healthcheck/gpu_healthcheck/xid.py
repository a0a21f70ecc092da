"""What an Xid means for the node: the severity the health check gives it and why.

From NVIDIA's "Xid Errors" catalogue, reduced to the codes seen on training clusters. Application
errors (a bad kernel, an out-of-range access) leave the GPU healthy: monitor. Memory and bus errors
need a reset (reboot) or a replacement (isolate). An Xid not listed here is reported as monitor.
"""

from __future__ import annotations

# Xid: (severity, meaning)
CATALOGUE: dict[int, tuple[str, str]] = {
    13: ("monitor", "graphics engine exception (usually the application)"),
    31: ("monitor", "GPU memory page fault (usually the application)"),
    43: ("monitor", "GPU stopped processing (usually the application)"),
    45: ("monitor", "preemptive cleanup after another error"),
    48: ("reboot", "double-bit ECC error"),
    61: ("reboot", "internal micro-controller breakpoint/warning"),
    62: ("reboot", "internal micro-controller halt"),
    63: ("monitor", "ECC page retirement or row remapping recorded"),
    64: ("isolate", "ECC page retirement or row remapping failure"),
    74: ("reboot", "NVLink error"),
    79: ("isolate", "GPU has fallen off the bus"),
    92: ("monitor", "high single-bit ECC error rate"),
    94: ("monitor", "contained ECC error (the application was stopped)"),
    95: ("reboot", "uncontained ECC error (GPU reset required)"),
    109: ("reboot", "context switch timeout"),
    119: ("reboot", "GSP RPC timeout"),
    120: ("reboot", "GSP error"),
    140: ("reboot", "unrecovered ECC error"),
    154: ("reboot", "GPU recovery action changed (reset or reboot required)"),
}
UNKNOWN = ("monitor", "not in this catalogue; look it up in NVIDIA's Xid documentation")


def classify(xid: int) -> tuple[str, str]:
    """(severity, meaning) of an Xid code."""
    return CATALOGUE.get(xid, UNKNOWN)
