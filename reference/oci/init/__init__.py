"""What runs inside the new container: the forked child that joins and creates namespaces
(`namespaces`), and the container's init before it execs the user's program (`container`),
built from `rootfs`, `mounts`, `devices`, `console`, `process` and `caps`.

Kernel calls go through `reference.linux.syscall.Syscall`; the few host operations that are not
syscalls of that protocol (writing /proc files, chdir, setsid, execve, the exec fifo) go through
`hostio.HostIO`, so that the whole init sequence runs under unit tests with recording fakes.
"""
