"""Copies of generation outputs in MEDIA_ROOT, so results outlive the provider's expiring URLs.

The download streams in chunks with a size cap, accepts only image/audio/video content types, and
names the file from our own ids: nothing in a remote URL or header reaches the file system path.
A copy that would leave the disk with less than RIVYA_MEDIA_MIN_FREE_MB free is not kept, and a
disk that fills up during the write leaves no partial file: the job keeps the provider's link.
"""

import errno
import logging
import mimetypes
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from rivya_dashboard import outbound
from rivya_dashboard.console.models import Generation, Output

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
MAX_URL_LENGTH = 2000
MEDIA_TYPES = ("image/", "audio/", "video/")
DISK_FULL_ERRORS = (errno.ENOSPC, errno.EDQUOT)
# Extensions by content type; the type itself was checked against MEDIA_TYPES first.
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
}


class CacheRefused(Exception):
    """The remote answer is not something we keep; the message is shown on the job page."""


def cache_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "outputs"


def cached_path(output: Output) -> Path | None:
    if not output.cached_name:
        return None
    return cache_dir() / output.cached_name


def _extension(content_type: str) -> str:
    return EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def _checked_type(response: outbound.Response) -> str:
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if not content_type.startswith(MEDIA_TYPES):
        raise CacheRefused(
            _("The result is %(type)s, not an image, audio or video file; open the original link.")
            % {"type": content_type or _("of no stated type")}
        )
    return content_type


def _room_left(directory: Path, incoming: int) -> bool:
    """Whether `incoming` bytes fit and still leave the reserve free on the directory's disk."""
    reserve = settings.RIVYA_MEDIA_MIN_FREE_MB * 1024 * 1024
    free = shutil.disk_usage(directory).free
    if free - incoming >= reserve:
        return True
    logger.warning(
        "The media cache's disk has %d MB free, under RIVYA_MEDIA_MIN_FREE_MB; outputs are "
        "not kept until space is freed.",
        free // (1024 * 1024),
    )
    return False


def _write_capped(response: outbound.Response, path: Path) -> int:
    cap = settings.RIVYA_MEDIA_MAX_MB * 1024 * 1024
    length = response.headers.get("Content-Length", "")
    declared = int(length) if length.isdigit() else 0
    if declared > cap:
        raise CacheRefused(_("The result is larger than the cache limit; open the original link."))
    if not _room_left(path.parent, declared):
        raise CacheRefused(
            _("The console's disk is nearly full; the copy was not kept. Open the original link.")
        )
    size = 0
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with partial.open("wb") as handle:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > cap:
                    raise CacheRefused(
                        _("The result is larger than the cache limit; open the original link.")
                    )
                handle.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return size


def fetched_outputs(
    generation: Generation, urls: list, session: outbound.Session | None = None
) -> list[Output]:
    """The Output rows of a succeeded job, unsaved, each with its cached copy (or why not)."""
    outputs = []
    for position, url in enumerate(urls):
        # The page links the original: only web addresses, never javascript: or data: ones.
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            continue
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        output = Output(generation=generation, position=position, original_url=url)
        do_cache_output(output, session)
        outputs.append(output)
    return outputs


def do_cache_output(output: Output, session: outbound.Session | None = None) -> Output:
    """Download one output into the cache; failures are noted on the row (unsaved), never raised.

    The download goes through the guarded session (the URL came from a remote API), unless it
    is this console's own sandbox media; tests pass `session` to stay in-process.
    """
    session = session or outbound.session_for_url(output.original_url)
    try:
        # No Authorization header: result URLs belong to a media host, not to the API.
        with session.get(output.original_url, stream=True, timeout=(5, 60)) as response:
            if response.status_code != 200:
                raise CacheRefused(
                    _("The media host answered HTTP %(status)s; the original link may be gone.")
                    % {"status": response.status_code}
                )
            content_type = _checked_type(response)
            name = f"{output.generation_id}-{output.position}{_extension(content_type)}"
            cache_dir().mkdir(parents=True, exist_ok=True)
            size = _write_capped(response, cache_dir() / name)
    except CacheRefused as exc:
        output.error = str(exc)[:300]
    except (outbound.RequestFailed, outbound.BlockedAddress) as exc:
        logger.warning("Caching output %s failed: %s", output.pk, type(exc).__name__)
        output.error = _("The media host could not be reached; open the original link.")
    except OSError as exc:
        # A full or read-only disk: the other outputs and the job itself must not fail with it.
        logger.error("Saving output %s to the cache failed: %s", output.pk, exc)
        output.error = (
            _("The console's disk is full; the copy was not kept. Open the original link.")
            if exc.errno in DISK_FULL_ERRORS
            else _("The copy could not be saved on the console's disk; open the original link.")
        )
    else:
        output.cached_name, output.content_type, output.size_bytes = name, content_type, size
        output.cached_at, output.error = timezone.now(), ""
    return output


def do_remove_cached(outputs: list[Output]) -> None:
    for output in outputs:
        path = cached_path(output)
        if path is not None:
            path.unlink(missing_ok=True)
