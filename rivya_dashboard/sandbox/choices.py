"""Every choice the sandbox makes where the Rivya contract is silent, gathered in one place.

Each value names the contract section whose PROPOSED (or missing) rule it fills, so the whole set
can be revised in one sitting once the real API is confirmed. Runtime-adjustable values (clock
speed, rate limit, token delay, failure rate, faults) start from settings and live on
SandboxSettings; this module only holds the fixed ones.
"""

import string

# §2.1 keys: "rvya_sk_" + 40 [A-Za-z0-9]; the display prefix is the first 12 characters.
KEY_PREFIX = "rvya_sk_"
KEY_BODY_LENGTH = 40
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_DISPLAY_LENGTH = 12

# §2.2 scopes; a new sandbox key gets all of them, like a key created in Rivya's Settings.
SCOPES = (
    "models:read",
    "generations:create",
    "generations:read",
    "files:create",
    "files:read",
    "credits:read",
    "webhooks:manage",
    "chat:create",
    "chat:read",
)
DEFAULT_ACCOUNT_CREDITS = 1000

# §3.3: every response carries X-Request-Id "req_" + 24 base62.
REQUEST_ID_PREFIX = "req_"
REQUEST_ID_LENGTH = 24
BASE62 = string.digits + string.ascii_letters
BASE36 = string.digits + string.ascii_lowercase

# Public ids (§5, §8, §10.4): prefix + 24 lowercase base36.
PUBLIC_ID_LENGTH = 24
TASK_PREFIX = "task_"
FILE_PREFIX = "file_"
COMPLETION_PREFIX = "chatcmpl_"
SESSION_PREFIX = "chs_"
MESSAGE_PREFIX = "msg_"

# §3.4 body and header limits.
MAX_JSON_BODY_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_CLIENT_REQUEST_ID_LENGTH = 128
MAX_CHAT_MESSAGE_LENGTH = 20000
# The contract names no code for an oversize JSON body (§3.2 lists none); 413 carries this one.
PAYLOAD_TOO_LARGE_CODE = "payload_too_large"

# §1.4 list envelope: newest first, limit 1-100, default 20.
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100

# §5.1 idempotency records are kept 24 h. Only 2xx outcomes are kept: an error response frees
# the key so the caller can fix the request (or top up credits) and retry with the same key.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# §3.3 rate limit: a sliding window per key. The contract proposes 60/60 s; the console itself
# must never be throttled in normal use, so the sandbox default is more generous.
RATE_LIMIT_WINDOW_SECONDS = 60

# §6 lifecycle, in sandbox seconds (scaled by the clock speed): queued, then processing.
QUEUED_SECONDS = 2
PROCESSING_SECONDS = {"image": 5, "audio": 10, "video": 20}
FAIL_MARKER = "[[fail]]"

# §8 files: default limits per kind, and uploads expire after 24 h.
FILE_LIMITS = {
    "image": {
        "max_bytes": 10 * 1024 * 1024,
        "mime_types": ["image/jpeg", "image/png", "image/webp"],
    },
    "video": {
        "max_bytes": 50 * 1024 * 1024,
        "mime_types": ["video/mp4", "video/quicktime", "video/webm"],
    },
    "audio": {
        "max_bytes": 10 * 1024 * 1024,
        "mime_types": [
            "audio/mpeg",
            "audio/mp4",
            "audio/wav",
            "audio/x-wav",
            "audio/aac",
            "audio/ogg",
        ],
    },
}
FILE_TTL_SECONDS = 24 * 3600
# Oversize uploads get 413 "file_too_large" (issue 4 asks for 413; §3.2 proposes that code).
FILE_TOO_LARGE_CODE = "file_too_large"

# §10.4 chat: tokens are estimated as characters / 4; final credits = ceil(tokens/1000) within
# [1, reserved]; a heartbeat comment every 15 s on long turns.
CHARS_PER_TOKEN = 4
TOKENS_PER_CREDIT = 1000
HEARTBEAT_SECONDS = 15.0
CHAT_TITLE_LENGTH = 60

# §12 OpenAPI document metadata.
OPENAPI_VERSION = "3.1.0"
API_TITLE = "Rivya API v1 (sandbox)"

# Fault names accepted globally, per key and in the X-Sandbox-Fault header (faults.py).
FAULT_HEADER = "X-Sandbox-Fault"
STATUS_FAULTS = {
    "429": ("rate_limited", "Too many requests in the current window (sandbox fault)."),
    "500": ("internal_error", "The sandbox simulated an internal error."),
    "502": ("bad_gateway", "The sandbox simulated a bad gateway."),
    "503": ("public_api_disabled", "The public API is temporarily switched off (sandbox fault)."),
}
SLOW_DRIP_DEFAULT_MS = 1000

# §9 webhooks (sandbox/webhooks*.py). Endpoint, event and delivery ids use the §9 prefixes.
WEBHOOK_ENDPOINT_PREFIX = "whend_"
WEBHOOK_EVENT_PREFIX = "evt_"
WEBHOOK_DELIVERY_PREFIX = "whdel_"
WEBHOOK_API_VERSION = "2026-05-11"
WEBHOOK_EVENT_TYPES = ("generation.succeeded", "generation.failed")
WEBHOOK_NAME_MAX_LENGTH = 100
WEBHOOK_URL_MAX_LENGTH = 2048
# Delivery: 10 s timeout, no redirects; six attempts at +0, +1 min, +5 min, +30 min, +2 h, +6 h
# counted from the event; fast mode reads the same numbers as seconds. failure_count counts
# failed attempts; 20 events in a row that used up every attempt disable the endpoint.
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_RETRY_DELAYS_SECONDS = (0, 60, 300, 1800, 7200, 21600)
WEBHOOK_FAST_RETRY_DIVISOR = 60
WEBHOOK_DISABLE_AFTER_FAILED_EVENTS = 20
# rotate-secret may keep the old secret signing for up to a day ({"overlap_seconds": n}).
WEBHOOK_MAX_ROTATION_OVERLAP_SECONDS = 24 * 3600
# Webhook faults (faults.py names; global, or on the key that created the endpoint): a stale
# delivery is stamped ten minutes in the past; out-of-order holds one delivery back until the
# next one for the endpoint has gone out (or one retry interval has passed).
WEBHOOK_STALE_SECONDS = 600
