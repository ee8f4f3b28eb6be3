# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The local side of a model transfer: walking a tree, preallocating and syncing files, swapping two
directories in one step (renameat2), atomic JSON writes, the hidden paths beside a destination, free space.

Standard library only (ctypes for syncfs, renameat2 and sync_file_range where libc has them).
"""

import ctypes
import ctypes.util
import errno
import json
import os
import re
import stat

_RENAME_EXCHANGE = 2


def walk_files(root):
    """{relative path: os.stat_result} of the regular files under root (empty when root is missing)."""
    found = {}
    if not os.path.isdir(root):
        return found
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                found[os.path.relpath(full, root)] = st
    return found


def _libc():
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


_LIBC = _libc()


def syncfs(path):
    """Flush the filesystem that holds path (one call instead of an fsync per file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC is not None and hasattr(_LIBC, "syncfs") and _LIBC.syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def exchange(staging, dest):
    """Atomically swap two directories; returns False when the kernel or filesystem cannot."""
    if _LIBC is None or not hasattr(_LIBC, "renameat2"):
        return False
    at_fdcwd = -100
    if _LIBC.renameat2(at_fdcwd, staging.encode(), at_fdcwd, dest.encode(), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), "renameat2(%s, %s, RENAME_EXCHANGE)" % (staging, dest))


def start_writeback(fd, offset, length):
    """Start writing a finished part to disk now (sync_file_range, no wait), so the final sync is short."""
    if _LIBC is not None and hasattr(_LIBC, "sync_file_range"):
        _LIBC.sync_file_range(fd, ctypes.c_longlong(offset), ctypes.c_longlong(length), 2)  # SYNC_FILE_RANGE_WRITE


def preallocate(fd, size):
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.ftruncate(fd, size)


def write_json_atomic(path, data):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def sidecar(dest, what):
    """Hidden paths beside dest that belong to it: the state record, the partial area, staging dirs."""
    parent, name = os.path.split(os.path.abspath(dest).rstrip("/"))
    return os.path.join(parent, ".%s.%s" % (name, what))


def existing(path):
    """path, or its nearest ancestor that exists."""
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def free_bytes(path):
    st = os.statvfs(existing(path))
    return st.f_bavail * st.f_frsize


def mounts_at_or_under(path):
    """The mount points at path or below it, sorted: from /proc/self/mountinfo (bind mounts of the same
    filesystem included), else by comparing st_dev (what os.path.ismount does)."""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as handle:
            points = {re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in handle}
    except OSError:
        points = {real} if os.path.ismount(real) else set()
        device = os.stat(real).st_dev
        for dirpath, dirs, _files in os.walk(real):
            points.update(os.path.join(dirpath, d) for d in dirs if os.lstat(os.path.join(dirpath, d)).st_dev != device)
    found = sorted(p for p in points if p == real or p.startswith(real.rstrip("/") + "/"))
    return [path if p == real else os.path.join(path, os.path.relpath(p, real)) for p in found]
