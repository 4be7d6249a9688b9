"""SHA-256 of a file, read in 1 MiB blocks (shared by the scripts that record input and output hashes)."""
import hashlib


def file_sha256(path):
    """Hex SHA-256 of the file at `path`."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
