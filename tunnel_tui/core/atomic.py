"""Private files written atomically: a reader sees the old file or the new one, never
a torn one, and a crash at any moment leaves one of the two.

Temp file in the same directory (O_EXCL, mode 0600 whatever the umask), write, fsync,
`os.replace`, fsync the directory. Symlinks are never followed: a symlinked target is
refused, since writing through it could clobber a file elsewhere.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tunnel_tui.core.errors import ConfigError
from tunnel_tui.core.paths import check_ours, check_private_dir

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def refuse_symlink(path: Path) -> None:
    """ConfigError if `path` is a symlink (a dangling one too)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(
            f"{path} is a symbolic link; tunnel-tui does not follow links for its files",
            hint=f"replace it with a regular file (e.g. cp --remove-destination "
            f'"$(readlink -f {path})" {path})',
        )
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is not a regular file")


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, mode 0600."""
    path = Path(path)
    refuse_symlink(path)
    dir_fd = os.open(path.parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        tmp_name = f".{path.name}.{os.urandom(6).hex()}.tmp"  # os, not `secrets`: lighter import
        fd = os.open(
            tmp_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                os.fchmod(fd, 0o600)  # the umask may have taken bits away; be exact
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp_name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_private_file(path: Path) -> bytes | None:
    """The file's bytes, None if it does not exist; a symlink is refused, and so is a
    file (or its directory) another user owns or can write."""
    path = Path(path)
    check_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        refuse_symlink(path)  # O_NOFOLLOW gives ELOOP: say it clearly
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        check_ours(path, info)
        return handle.read()
