"""The kernel boundary of the reference runtime.

`syscall` holds the `Syscall` protocol and the kernel constants, `libc` the real implementation,
`fake` a recording fake for unit tests, and `procfs` dependency-free parsers of /proc files.
Nothing is imported here, so that `import reference.linux.procfs` stays cheap.
"""
