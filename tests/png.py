"""Real, decodable PNG files for uploads: the console and the sandbox check the magic bytes,
and the browser draws them."""

import struct
import zlib


def png_bytes(width: int = 1, height: int = 1, rgb: bytes = b"\xff\x00\x00") -> bytes:
    """An RGB PNG of one colour, `width` by `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + rgb * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
