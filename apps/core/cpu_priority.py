"""A web process yields the CPU to the workers of its host (NOTIFIER_WEB_NICENESS).

Why: where web, workers and PostgreSQL share a machine's cores, the API's clients can post faster
than the workers deliver. Linux splits a busy CPU evenly between what is runnable, and a burst
of single POSTs took most of it: the workers spent three quarters of their time waiting for a
core, delivered a third of what was accepted, and the backlog drained only once the burst ended
(docs/performance.md, "The burst: the CPU's split between web and workers"). What Notifier
promises is delivery; at a lower priority the web answers a burst larger than the machine can
deliver more slowly instead, and deliveries keep pace. A niced process still gets every cycle
nothing else wants: the web alone on its host, or with idle workers, runs as fast as before.

Linux orders processes by niceness only against those of the same scheduling group. Where the
kernel groups processes by session (autogroup, `/proc/<pid>/autogroup`: the default of Debian's
and Ubuntu's kernels), honcho and the like start each Procfile line in a session of its own,
and between sessions the group's niceness decides, not the process's; so the web's session is
lowered too, but only when this process leads it or its parent does (uvicorn's manager), so that
a web started in a shell's session with other processes never lowers them. A process manager
that gives each service a control group of its own (systemd, containers) sets the weight there
instead (docs/operations.md, "Processes").
"""

import errno
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

_AUTOGROUP = Path("/proc/self/autogroup")
_THREADS = Path("/proc/self/task")
# The kernel takes one change of any group's niceness per tenth of a second from an unprivileged
# process; the web's processes start together and may meet it.
_AUTOGROUP_TRIES = 10
_AUTOGROUP_RETRY_SECONDS = 0.1


def web_cpu_priority_lower(niceness: int) -> None:
    """Give this process (every thread of it) and, where it leads it, its session's scheduling
    group the niceness `niceness`, unless they already have as much; 0 changes nothing. Never
    raises: a host that allows neither starts the web as it is, and says so."""
    if niceness <= 0:
        return
    try:
        for thread_id in _thread_ids():
            if os.getpriority(os.PRIO_PROCESS, thread_id) < niceness:
                os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
    except OSError as error:
        logger.warning("could not lower the web process's CPU priority to niceness %d: %s", niceness, error)
        return
    if os.getsid(0) in (os.getpid(), os.getppid()):
        session_group_niceness_raise(niceness)


def _thread_ids() -> list[int]:
    """This process's threads (a thread's niceness is its own on Linux); 0, the caller, elsewhere."""
    try:
        return [int(name) for name in os.listdir(_THREADS)]
    except OSError:
        return [0]


def session_group_niceness_raise(niceness: int) -> None:
    """Give this process's session group (autogroup) the niceness `niceness` unless it has as much;
    nothing where the kernel does not group by session. For a process that leads its session."""
    for _ in range(_AUTOGROUP_TRIES):
        try:
            if _session_group_niceness() >= niceness:
                return
            _AUTOGROUP.write_text(str(niceness))
            return
        except FileNotFoundError:
            return  # the kernel does not group by session: the process's niceness is what counts
        except OSError as error:
            if error.errno != errno.EAGAIN:
                logger.warning("could not lower the web session's CPU priority to niceness %d: %s",
                               niceness, error)
                return
        time.sleep(_AUTOGROUP_RETRY_SECONDS)
    logger.warning("could not lower the web session's CPU priority to niceness %d: the kernel kept refusing",
                   niceness)


def _session_group_niceness() -> int:
    # "/autogroup-85 nice 0"
    return int(_AUTOGROUP.read_text().split()[-1])
