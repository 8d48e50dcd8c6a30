"""Landlock (Linux 5.13 and newer): a process gives up, for itself and everything it starts, every
access to the file system but what it lists, without privileges. The keeper applies it to a worker
(read: the Python installation, the grader's copy, the submissions it grades; write: its own
folder), and the worker's child applies a narrower one for each file (write: that file's folder
alone). Where the kernel's ABI allows, the same ruleset also forbids TCP (ABI 4) and signals and
abstract Unix sockets outside the domain (ABI 6): a submission cannot reach the grader's processes
or another worker's.

Standard library only, as the keeper is (grader/run/keeper.py). The kernel's interface
(``include/uapi/linux/landlock.h``): three system calls, numbered alike on every architecture.
"""
from __future__ import annotations

import ctypes
import os
import struct

ENV_OFF = "ACTIVATIONS_GRADER_NO_LANDLOCK"  # tests: the machines without Landlock
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_V1 = (1 << 13) - 1  # execute .. make_sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights a rule on a file may hold
READ = EXECUTE | READ_FILE | READ_DIR
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect (ABI 4)
_SCOPES = (1 << 0) | (1 << 1)  # abstract Unix sockets, signals (ABI 6)


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none (an old kernel, a seccomp filter
    that refuses the call, not Linux, or ``ACTIVATIONS_GRADER_NO_LANDLOCK`` set)."""
    if os.environ.get(ENV_OFF):
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def _fs_rights(version: int) -> int:
    rights = _FS_V1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: list[str], write: list[str]) -> int:
    """Allow this process (and what it starts) to read ``read`` and to read and write ``write``,
    each a file or a folder with everything below it, and nothing else of the file system; no TCP
    and no signal out of the domain where the ABI has them. Returns the ABI applied; 0 where there
    is no Landlock (nothing was changed). Paths that do not exist are left out. Raises OSError when
    the kernel refuses a ruleset it announced: a process must not go on believing it is confined."""
    version = abi()
    if version <= 0:
        return 0
    libc = _libc()
    everything = _fs_rights(version)
    attr = struct.pack("QQQ", everything, _NET_TCP if version >= 4 else 0, _SCOPES if version >= 6 else 0)
    size = 8 if version < 4 else 16 if version < 6 else 24
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.create_string_buffer(attr[:size]), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for paths, rights in ((read, READ), (write, everything)):
            for path in paths:
                _allow(libc, int(ruleset), path, rights)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return version


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_ONLY
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd))
        if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), rule,
                        ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    finally:
        os.close(fd)


# What any Python process reads besides its own installation: the system's libraries and
# configuration, the kernel's views of itself, devices (a GPU's among them).
SYSTEM_READ = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev"]


def system_write() -> list[str]:
    """Devices any process writes: the null devices, and a GPU's (CUDA opens them read-write)."""
    gpus = [os.path.join("/dev", n) for n in _listdir("/dev") if n.startswith("nvidia")]
    gpus += [os.path.join("/dev/dri", n) for n in _listdir("/dev/dri")]
    return ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", *gpus]


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []
