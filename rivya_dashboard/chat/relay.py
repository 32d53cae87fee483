"""The reply relay: one background reader per turn, and the browser's tail of what it read.

The upstream read must not depend on the browser's request, so a refresh or a closed tab never
loses a reply; only Stop ends one early. The reader publishes each event at once to an in-process
buffer (streams served by the same worker follow it with no delay) and one saver thread per
process writes the events to the database in batches every FLUSH_SECONDS (one short write
transaction for all replies, which keeps SQLite's single writer lock free). A stream served by
another gunicorn worker, or a page opened later, tails those rows: the database is the source of
truth across processes, the buffer only a shortcut inside one.
"""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rivya_dashboard import outbound
from rivya_dashboard.chat.models import ChatEvent, ChatTurn

log = logging.getLogger(__name__)

# Streams in this process follow the reader in memory (a send's own response always does); the
# saved batches serve reloads and other processes, for which a quarter second is prompt enough,
# and five batches a second instead of twenty spare most of the saver's CPU.
FLUSH_SECONDS = 0.25
STOP_POLL_SECONDS = 0.2
ALIVE_SECONDS = 5.0
# A reply whose reader has not been heard of for this long lost its process (a restart or crash).
STALE_SECONDS = 30.0
HEARTBEAT_SECONDS = 10.0
TAIL_POLL_SECONDS = 0.02
# The longest a finished reply's stream waits for its end to be saved (one saver tick, normally).
SAVE_WAIT_SECONDS = 5.0
STALE_CHECK_SECONDS = 2.0
ABANDONED_MESSAGE = _(
    "The console restarted while this reply was streaming. The text so far is kept; "
    "regenerate the reply to get the rest."
)


@dataclass(frozen=True)
class Frame:
    seq: int
    kind: str
    text: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.kind in ChatEvent.TERMINAL


class LiveTurn:
    """A reply read in this process: its frames so far, the stop flag, the upstream response."""

    def __init__(self, turn_id: int) -> None:
        self.turn_id = turn_id
        self.calling = threading.Event()
        self.started = threading.Event()
        self.stop = threading.Event()
        # Set once the end is in the database, where other processes and reloaded pages read it;
        # `settled` once the reader is done, its ledger row written too.
        self.saved = threading.Event()
        self.settled = threading.Event()
        self.upstream: outbound.Response | None = None
        self._changed = threading.Condition()
        self._frames: list[Frame] = []
        self._finished = False
        self._lock = threading.Lock()
        self._unsaved: list[Frame] = []
        self._fields: dict = {}
        self._known: dict = {}
        self._closing: Frame | None = None
        self._saved_alive = time.monotonic()

    def publish(self, frame: Frame, **fields: object) -> None:
        with self._lock:
            self._unsaved.append(frame)
            self._fields.update(fields)
            self._known.update(fields)
        with self._changed:
            self._frames.append(frame)
            self._changed.notify_all()

    def update(self, **fields: object) -> None:
        with self._lock:
            self._fields.update(fields)
            self._known.update(fields)

    def close_with(self, frame: Frame, **fields: object) -> None:
        """The end reaches this process's streams at once, with the turn's final fields to show
        it from (`known`); the saver writes it down right after and then sets `saved`."""
        with self._lock:
            self._closing = frame
            self._fields.update(fields)
            self._known.update(fields)
        self.calling.set()
        self.started.set()
        LIVE.wake.set()
        with self._changed:
            self._frames.append(frame)
            self._finished = True
            self._changed.notify_all()

    @property
    def is_closing(self) -> bool:
        return self._closing is not None

    def known(self) -> dict:
        """Every field the reader has set on the turn so far, saved or not."""
        with self._lock:
            return dict(self._known)

    def take(self, now: float) -> tuple[list[Frame], dict, Frame | None]:
        with self._lock:
            frames, fields, closing = self._unsaved, self._fields, self._closing
            self._unsaved, self._fields = [], {}
        # Alive is a heartbeat for other processes (STALE_SECONDS), not a record of each batch.
        if now - self._saved_alive >= ALIVE_SECONDS:
            fields = {**fields, "alive_at": timezone.now()}
            self._saved_alive = now
        return frames, fields, closing

    def give_back(self, frames: list[Frame], fields: dict) -> None:
        with self._lock:
            self._unsaved = frames + self._unsaved
            self._fields = {**fields, **self._fields}

    def frames_after(self, seq: int, timeout: float) -> list[Frame]:
        # Sequence numbers start at 1 with no gaps, so frame n sits at index n - 1.
        with self._changed:
            if len(self._frames) <= seq and not self._finished:
                self._changed.wait(timeout)
            return self._frames[seq:]

    def cut(self) -> None:
        """Stop: the reader checks the flag between events; a read blocked on a silent upstream
        is ended by shutting its socket, so Stop never waits for the next byte."""
        self.stop.set()
        upstream = self.upstream
        sock = getattr(getattr(getattr(upstream, "raw", None), "connection", None), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("upstream socket of turn %s already closed", self.turn_id)


class Registry:
    """The replies this process is reading, and the saver thread that writes them down."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self._turns: dict[int, LiveTurn] = {}
        self._lock = threading.Lock()
        self._saver: threading.Thread | None = None

    def add(self, turn_id: int) -> LiveTurn:
        live = LiveTurn(turn_id)
        with self._lock:
            self._turns[turn_id] = live
            if self._saver is None or not self._saver.is_alive():
                self._saver = threading.Thread(target=save_loop, name="chat-saver", daemon=True)
                self._saver.start()
        self.wake.set()
        return live

    def get(self, turn_id: int) -> LiveTurn | None:
        return self._turns.get(turn_id)

    def remove(self, turn_id: int) -> None:
        with self._lock:
            self._turns.pop(turn_id, None)

    def snapshot(self) -> list[LiveTurn]:
        with self._lock:
            return list(self._turns.values())


LIVE = Registry()


def hand_back_connection() -> None:
    """Give the thread's database connection back while it waits on a stream. A PostgreSQL
    connection is a server process, and fifty waiting streams must not hold fifty; an SQLite
    connection is only a file handle, and reopening it re-reads the schema (and the last one to
    close checkpoints the WAL with an fsync), costs the next request of this thread would pay."""
    if connection.vendor != "sqlite":
        connection.close()


def save_loop() -> None:
    last_stop_check = 0.0
    while True:
        LIVE.wake.wait(FLUSH_SECONDS)
        LIVE.wake.clear()
        turns = LIVE.snapshot()
        if not turns:
            connection.close()
            LIVE.wake.wait()
            # A reply just began: its first words come within milliseconds, and this thread
            # would take the GIL to reopen a connection and query for Stop. That waits a tick.
            last_stop_check = time.monotonic()
            continue
        try:
            close_old_connections()
            save(turns)
            if time.monotonic() - last_stop_check >= STOP_POLL_SECONDS:
                last_stop_check = time.monotonic()
                cut_stopped(turns)
        except Exception:
            # Any error, not only the database's: a dead saver would leave every reply of this
            # process unsaved and its streams waiting forever.
            log.exception("saving chat replies failed; retrying")
            connection.close()
            time.sleep(FLUSH_SECONDS)


def save(turns: list[LiveTurn]) -> None:
    now = time.monotonic()
    batches = [(live, *live.take(now)) for live in turns]
    rows = [
        ChatEvent(turn_id=live.turn_id, seq=frame.seq, kind=frame.kind, text=frame.text)
        for live, frames, _, closing in batches
        for frame in frames + ([closing] if closing else [])
    ]
    if not rows and not any(fields for _, _, fields, _ in batches):
        return  # an empty transaction would still take SQLite's write lock
    try:
        with transaction.atomic():
            ChatEvent.objects.bulk_create(rows)
            for live, _, fields, _ in batches:
                if fields:
                    ChatTurn.objects.filter(pk=live.turn_id).update(**fields)
    except DatabaseError:
        for live, frames, fields, _ in batches:
            live.give_back(frames, fields)
        raise
    for live, _, _, closing in batches:
        if closing is not None:
            LIVE.remove(live.turn_id)
            live.saved.set()


def cut_stopped(turns: list[LiveTurn]) -> None:
    """Stop may have been pressed on a page served by another worker: it is a column there."""
    waiting = {live.turn_id: live for live in turns if not live.stop.is_set()}
    if not waiting:
        return
    stopped = ChatTurn.objects.filter(pk__in=waiting, stop_requested_at__isnull=False)
    for turn_id in stopped.values_list("pk", flat=True):
        waiting[turn_id].cut()


def wait_written(live: LiveTurn | None) -> None:
    """Streams end only once their turn's end and its ledger row are written: what the page does
    next (a reload, the next message, the usage page) reads the database."""
    if live is not None:
        live.saved.wait(SAVE_WAIT_SECONDS)
        live.settled.wait(SAVE_WAIT_SECONDS)


def tail(turn_id: int, after: int) -> Iterator[Frame | None]:
    """The turn's frames after `after`, ending with its terminal frame; None marks a quiet spell
    of HEARTBEAT_SECONDS, for the caller to send a keep-alive."""
    # A reply this process is reading has not ended: its frames are in memory, no query needed
    # before the first words (the usual case: the stream opens right after the send).
    if LIVE.get(turn_id) is None and (end := ended(turn_id, after)) is not None:
        yield end
        return
    last = after
    quiet_since = time.monotonic()
    while True:
        frames = next_frames(turn_id, last, quiet_since, eager=last == after)
        for frame in frames:
            yield frame
            last = frame.seq
            if frame.is_terminal:
                return
        if frames:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            yield None


def ended(turn_id: int, after: int) -> Frame | None:
    """The frame that ends a finished turn for a stream resuming after `after`, else None."""
    # Status first: it is saved in the same transaction as the terminal event, so a finished
    # turn with no terminal event is one brought in from a Rivya session, which has none.
    finished = ChatTurn.objects.filter(pk=turn_id, status__in=ChatTurn.TERMINAL).exists()
    terminal = ChatEvent.objects.filter(turn_id=turn_id, kind__in=ChatEvent.TERMINAL)
    end = terminal.values_list("seq", "kind", "text").first()
    if end is not None and end[0] <= after:
        return Frame(*end)  # a reconnect after the end gets the end again, not a silent wait
    if finished and end is None:
        return Frame(after + 1, ChatEvent.Kind.DONE)
    return None


def next_frames(turn_id: int, last: int, quiet_since: float, eager: bool) -> list[Frame]:
    """Eager until the first frame (time to first token); afterwards the saver writes only
    every FLUSH_SECONDS, so polling the database more often would find nothing new."""
    live = LIVE.get(turn_id)
    if live is not None:
        # Following this process's reader needs no database.
        hand_back_connection()
        return live.frames_after(last, timeout=HEARTBEAT_SECONDS)
    rows = ChatEvent.objects.filter(turn_id=turn_id, seq__gt=last).order_by("seq")
    frames = [Frame(*row) for row in rows.values_list("seq", "kind", "text")]
    if frames:
        return frames
    # Only a reply quiet for a while can have lost its reader; checking costs a write lock.
    if time.monotonic() - quiet_since >= STALE_CHECK_SECONDS:
        abandoned = do_abandon_if_stale(turn_id)
        if abandoned is not None:
            return [abandoned]
    time.sleep(TAIL_POLL_SECONDS if eager else FLUSH_SECONDS)
    return []


def do_abandon_if_stale(turn_id: int) -> Frame | None:
    """End a reply whose reader is gone, keeping what it saved; None while it is still alive."""
    stale_before = timezone.now() - timedelta(seconds=STALE_SECONDS)
    if not ChatTurn.objects.filter(pk=turn_id, alive_at__lt=stale_before).exists():
        return None
    with transaction.atomic():
        return abandon(turn_id)


def abandon(turn_id: int) -> Frame | None:
    turn = ChatTurn.objects.select_for_update().filter(pk=turn_id).first()
    if turn is None or turn.is_finished or LIVE.get(turn_id) is not None:
        return None
    if timezone.now() - turn.alive_at < timedelta(seconds=STALE_SECONDS):
        return None
    progress = turn.progress()
    frame = Frame(progress.seq + 1, ChatEvent.Kind.ERROR, str(ABANDONED_MESSAGE))
    ChatEvent.objects.create(turn=turn, seq=frame.seq, kind=frame.kind, text=frame.text)
    turn.reply = progress.text
    turn.thinking = progress.thinking
    turn.status = ChatTurn.Status.FAILED
    turn.error_code = "console_restarted"
    turn.error_message = frame.text
    turn.finished_at = timezone.now()
    turn.save()
    return frame
