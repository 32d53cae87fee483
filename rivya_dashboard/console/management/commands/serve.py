"""Run the console: prepare the data directory, then supervise gunicorn and one task worker.

The listening socket is bound here and handed to gunicorn, so a taken port is reported before
anything starts, and a restarted gunicorn reuses the same socket without a gap.
"""

import errno
import os
import shutil
import socket
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from rivya_dashboard.console import web_worker
from rivya_dashboard.console.supervise import Child, Supervisor
from rivya_dashboard.data_dir import make_private, tighten

# gthread: each open stream (chat SSE) holds a thread, so workers x threads bounds open streams.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 32
GRACEFUL_SECONDS = 10
BACKLOG = 2048


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind host:port or raise CommandError with a one-line reason."""
    try:
        family, kind, proto, _canonical_name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandError(
            _("Cannot listen on %(host)r: %(reason)s. Check --host.")
            % {"host": host, "reason": exc.strerror}
        ) from None
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                _(
                    "Port %(port)s on %(host)s is already in use: stop the other server "
                    "or choose another port with --port."
                )
                % {"port": port, "host": host}
            ) from None
        raise CommandError(
            _("Cannot listen on %(host)s:%(port)s: %(reason)s.")
            % {"host": host, "port": port, "reason": exc.strerror}
        ) from None
    return listener


def display_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - only displayed
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def gunicorn_argv(fd: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "rivya_dashboard.wsgi:application",
        f"--bind=fd://{fd}",
        "--worker-class=rivya_dashboard.console.web_worker.JsonRefusalsWorker",
        f"--limit-request-line={web_worker.REQUEST_LINE_LIMIT}",
        # child_exit: a web process's open-stream gauge leaves /metrics with it.
        f"--config=python:{web_worker.__name__}",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--graceful-timeout={GRACEFUL_SECONDS}",
        # The default control socket is one path per user, which two consoles would share.
        "--no-control-socket",
    ]


def prepare_metrics_dir(path: Path) -> None:
    """Every process of this serve writes its metrics here; /metrics adds them up. Figures of
    an earlier run would count twice, so the directory starts empty."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def worker_argv() -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), "worker", "--no-reload"]


class Command(BaseCommand):
    help = "Migrate, collect static files, then run the web server and a background worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
        parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="Web processes.")
        parser.add_argument(
            "--threads", type=int, default=DEFAULT_THREADS, help="Threads per web process."
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Run only the web server (run `manage.py worker` elsewhere).",
        )

    def prepare(self, verbosity: int) -> None:
        make_private(settings.DATA_DIR)
        tighten(settings.DATA_DIR)
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("collectstatic", interactive=False, verbosity=verbosity)
        prepare_metrics_dir(settings.DATA_DIR / "metrics")

    def handle(self, *args: object, **options: object) -> None:
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError(_("--workers and --threads must be at least 1."))
        listener = bind_listener(options["host"], options["port"])
        try:
            self.prepare(options["verbosity"])
            listener.listen(BACKLOG)
            self.supervise(listener, options)
        except KeyboardInterrupt:
            raise CommandError(_("Interrupted before the server started.")) from None
        finally:
            listener.close()

    def supervise(self, listener: socket.socket, options: dict) -> None:
        fd = listener.fileno()
        # Started in the project's own folder: from anywhere else, `python -m gunicorn` would
        # import a rivya_dashboard found in the current directory before this one.
        web = gunicorn_argv(fd, options["workers"], options["threads"])
        children = [Child("web", web, (fd,), cwd=settings.BASE_DIR)]
        if not options["no_worker"]:
            children.append(Child("worker", worker_argv(), cwd=settings.BASE_DIR))
        # Port 0 asks the system for a free port: show the one it gave.
        url = display_url(options["host"], listener.getsockname()[1])
        # The children reach the console's own sandbox here, never at a request's Host header.
        os.environ.setdefault("RIVYA_LISTEN_URL", url.rstrip("/"))
        self.stdout.write(
            _("Rivya Console is running at %(url)s (press Ctrl-C to stop)") % {"url": url}
        )
        self.stdout.flush()
        Supervisor(children, stop_timeout=GRACEFUL_SECONDS + 5).run()
