"""Child processes that must not outlive the process that started them (Envoy, extra servers)."""

from __future__ import annotations

import shutil
import sys


def die_with_parent_prefix() -> list[str]:
    """A command prefix that makes the kernel kill the child when its parent dies, so a crashed
    or SIGKILLed server or test run does not leave children holding ports.

    util-linux's `setpriv` sets the parent-death signal and execs the command (same pid). Not a
    `preexec_fn`: that forces a plain fork() of a process running gRPC, whose fork handlers then
    abort the child ("epoll_wait error: Bad file descriptor") before it can exec. Without
    setpriv (not Linux) the prefix is empty and children are only stopped on a clean exit.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv and sys.platform.startswith("linux") else []
