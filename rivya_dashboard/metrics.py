"""/metrics in the Prometheus text format, for every process of the console at once.

Counters and histograms are kept per process by prometheus-client; under `serve` each gunicorn
process and worker writes them to RIVYA_DATA_DIR/metrics (PROMETHEUS_MULTIPROC_DIR, set by serve
before any process starts) and a scrape adds them up. Figures the database already holds (the
task queue, credits spent by key) are read from it at scrape time, so every host answers the
same. Labels name views, operations, inboxes and keys by id: never a member, a key's secret or
an inbox's URL token. The endpoint is off (404) unless RIVYA_METRICS_TOKEN is set, and then
wants it as a bearer token.
"""

import hmac
import re
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import DecimalField, Min, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "rivya_http_requests_total",
    "Requests answered, by view, method and status class.",
    ["view", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "rivya_http_request_duration_seconds",
    "Time to a response's headers, by view.",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
OPEN_STREAMS = Gauge(
    "rivya_chat_streams_open",
    "Chat replies streaming to a browser now.",
    multiprocess_mode="livesum",
)
POLLS = Counter(
    "rivya_generation_polls_total", "Polls of a generation, by the state found.", ["state"]
)
UPSTREAM = Counter(
    "rivya_upstream_requests_total",
    "Calls to the Rivya API, by operation and status.",
    ["operation", "status"],
)
UPSTREAM_SECONDS = Histogram(
    "rivya_upstream_request_duration_seconds",
    "Time to the Rivya API's answer, by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_VERDICTS = Counter(
    "rivya_webhook_verdicts_total",
    "Requests to an inbox's receiver, by inbox id and verdict.",
    ["inbox", "verdict"],
)

# An id in a path (task_…, file_…, chs_…, whend_…, a number) becomes {id}: one series per operation.
ID_SEGMENT = re.compile(r"^(\d+|[a-z]+_[A-Za-z0-9_]{6,})$")


def operation_of(method: str, url: str) -> str:
    path = urlsplit(url).path
    path = path.split("/api/v1", 1)[-1] or "/"
    segments = ["{id}" if ID_SEGMENT.match(part) else part for part in path.split("/")]
    return f"{method} {'/'.join(segments)}"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def record_exchange(request, response, elapsed: float) -> None:
    operation = operation_of(request.method or "", request.url or "")
    UPSTREAM.labels(operation, status_class(response.status_code)).inc()
    UPSTREAM_SECONDS.labels(operation).observe(elapsed)


def counted_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A browser's stream, counted as open while it is being sent."""
    OPEN_STREAMS.inc()
    try:
        yield from chunks
    finally:
        OPEN_STREAMS.dec()


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = match.view_name if match and match.view_name else "unrouted"
        REQUEST_SECONDS.labels(view).observe(time.perf_counter() - started)
        REQUESTS.labels(view, request.method, status_class(response.status_code)).inc()
        return response


class DatabaseCollector(Collector):
    """What the database knows, read at scrape time: the same answer from every host."""

    def collect(self) -> Iterator:
        ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
        due = ready.filter(run_after__lte=timezone.now())
        depth = GaugeMetricFamily("rivya_tasks_ready", "Background tasks due and waiting.")
        depth.add_metric([], due.count())
        yield depth
        oldest = due.aggregate(oldest=Min("enqueued_at"))["oldest"]
        age = GaugeMetricFamily(
            "rivya_tasks_oldest_ready_seconds", "Age of the oldest due task not yet started."
        )
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0)
        yield age
        yield credits_spent()


def credits_spent() -> CounterMetricFamily:
    from rivya_dashboard.vault.models import LedgerEntry

    family = CounterMetricFamily(
        "rivya_credits_spent",
        "Credits charged on each key (final charges), by key id.",
        labels=["key"],
    )
    rows = (
        LedgerEntry.objects.filter(key__isnull=False)
        .values("key_id")
        .annotate(
            total=Sum(
                Coalesce("credits_final", "credits_reserved"),
                output_field=DecimalField(max_digits=20, decimal_places=4),
            )
        )
    )
    for row in rows:
        family.add_metric([str(row["key_id"])], float(row["total"] or 0))
    return family


def registry() -> CollectorRegistry:
    gathered = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(gathered)
    else:
        gathered.register(_ProcessMetrics())
    gathered.register(DatabaseCollector())
    return gathered


class _ProcessMetrics(Collector):
    """This process's own metrics, when there is no multi-process directory (runserver, tests)."""

    def collect(self) -> Iterator:
        yield from REGISTRY.collect()


def token_matches(request: HttpRequest) -> bool:
    expected = settings.RIVYA_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode())


@login_not_required
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.RIVYA_METRICS_TOKEN:
        raise Http404("Metrics are off: set RIVYA_METRICS_TOKEN.")
    if not token_matches(request):
        response = HttpResponse("Send RIVYA_METRICS_TOKEN as a bearer token.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
