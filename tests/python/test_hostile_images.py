"""Images built to cost memory out of proportion to their size (issue: hardening, case 5): the
decode of each stays bounded, and the photos beside them are labelled."""

import json
import shutil
import struct
import zlib

from conftest import PHOTOS, run_measured, write_job


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_inflating_chunks(path, inflated=1 << 30):
    """An 8×8 PNG of about 1 MB whose iCCP profile and zTXt text each inflate to `inflated` bytes."""
    co = zlib.compressobj(9)
    block = b"\0" * (1 << 24)
    bomb = b"".join(co.compress(block) for _ in range(inflated // len(block))) + co.flush()
    raw = b"".join(b"\0" + b"\x80" * 24 for _ in range(8))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + chunk(b"iCCP", b"evil\0\0" + bomb)
        + chunk(b"zTXt", b"Comment\0\0" + bomb)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path.stat().st_size


def test_compressed_ancillary_chunks_do_not_inflate(tmp_path, labeljob_bin, run_env):
    src = tmp_path / "in"
    src.mkdir()
    size = png_with_inflating_chunks(src / "iccp-bomb.png")
    shutil.copy(PHOTOS / "dog.jpg", src / "dog.jpg")
    job = write_job(tmp_path / "job.yaml", "iccp", f"file://{src}", f"file://{tmp_path}/out")
    code, out, err, rss_kib = run_measured(labeljob_bin, run_env, "run", job, "--no-progress")
    assert code == 0, (out, err)
    assert "labelled 2 of 2 images (0 failed" in out, out
    # 2 GiB of profile and text once cost 1.1 GB of RSS for the profile alone.
    print(f"\n{size} B PNG with 2 GiB of compressed chunks: peak RSS {rss_kib // 1024} MiB")
    assert rss_kib < 300 * 1024, f"peak RSS {rss_kib} KiB"
    anns = json.loads((tmp_path / "out/annotations.json").read_text())
    assert sorted(i["file_name"].rsplit("/", 1)[1] for i in anns["images"]) == ["dog.jpg", "iccp-bomb.png"]
