"""The bench's helpers (the fake SMTP server, the load generator) yield the CPU to the stack.

They start under `nice -n N` in sessions of their own, and where the kernel groups processes by
session (autogroup), a process's niceness orders it only against its own session: the groups
compete as equals. So each helper gives its session's group its own niceness as it starts, as
a web process does (apps/core/cpu_priority.py).
"""

import os

from apps.core.cpu_priority import session_group_niceness_raise


def niceness_session_wide() -> None:
    if os.getsid(0) == os.getpid():
        session_group_niceness_raise(os.nice(0))
