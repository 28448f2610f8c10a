"""process.terminal: a pseudo-terminal for the container, its master sent to --console-socket.

As runc: the pty is opened in the container's own devpts (/dev/ptmx after pivot_root), the
slave is bind-mounted on /dev/console and becomes stdin/out/err and the controlling terminal,
and the master goes to whoever listens on the console socket (containerd-shim, `recvtty`) as
SCM_RIGHTS ancillary data on a unix stream socket that `refrun create` connected.
"""

from __future__ import annotations

# Imported with this module, before pivot_root (see container.preload). `_socket` rather than
# `socket`, which imports enum and collections (~8 ms) for the same sendmsg.
import _socket
import fcntl
import os
import struct

from reference.errors import KernelError
from reference.linux.syscall import MS_BIND, Syscall
from reference.oci.init.paths import make_file
from reference.oci.spec import ConsoleSize

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSWINSZ = 0x5414
TIOCSCTTY = 0x540E


def setup_console(
    sc: Syscall, sock_fd: int, size: ConsoleSize | None, *, mount_console: bool = True
) -> None:
    """Open a pty in the container, send its master, make the slave our terminal. `exec`
    passes mount_console=False: /dev/console already belongs to the container's init."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        slave_path = f"/dev/pts/{number}"
        slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if size is not None:
            fcntl.ioctl(slave, TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))
    except OSError as e:
        raise KernelError("open pty", e.errno or 0, obj="/dev/ptmx") from None
    if mount_console:
        make_file("/dev/console")
        sc.mount(slave_path, "/dev/console", None, MS_BIND)
    sock = _socket.socket(fileno=sock_fd)
    try:
        # What socket.send_fds does: the fd as SCM_RIGHTS ancillary data.
        rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))
        sock.sendmsg([b"/dev/ptmx"], [rights])
    except OSError as e:
        raise KernelError("sendmsg(SCM_RIGHTS)", e.errno or 0, obj="console socket") from None
    finally:
        sock.close()
        os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
    try:
        fcntl.ioctl(0, TIOCSCTTY, 0)
    except OSError as e:
        raise KernelError("ioctl(TIOCSCTTY)", e.errno or 0, obj=slave_path) from None
