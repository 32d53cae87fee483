"""The data directory is private: 0700, and every file in it 0600, whatever the umask.

It holds the database (and SQLite's -wal and -shm files, which SQLite creates with the
database file's own mode), the media cache, sandbox uploads, the keyring and the secret key.
Each process restricts its umask once it has settings, so whatever it creates there is private
from the first byte; `serve` also tightens what an earlier version or a wider umask left.
"""

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def make_private(data_dir: Path) -> None:
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(data_dir, DIRECTORY_MODE)


def tighten(data_dir: Path) -> int:
    """Make every directory under data_dir 0700 and every file 0600; returns how many changed."""
    changed = 0
    for root, directories, files in os.walk(data_dir):
        for name, mode in [(root, DIRECTORY_MODE)] + [
            (os.path.join(root, file), FILE_MODE) for file in files
        ]:
            current = os.lstat(name)
            if stat.S_ISLNK(current.st_mode) or stat.S_IMODE(current.st_mode) == mode:
                continue
            os.chmod(name, mode)
            changed += 1
        directories.sort()
    return changed
