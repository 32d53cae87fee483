"""The sandbox's tables: the core emulator (core.py) and the webhooks feature (webhooks.py)."""

from rivya_dashboard.sandbox.models.core import (
    Account,
    ChatMessage,
    ChatSession,
    Generation,
    IdempotencyRecord,
    RequestLog,
    SandboxKey,
    SandboxSettings,
    UploadedFile,
)
from rivya_dashboard.sandbox.models.webhooks import *  # noqa: F403

__all__ = [
    "Account",
    "ChatMessage",
    "ChatSession",
    "Generation",
    "IdempotencyRecord",
    "RequestLog",
    "SandboxKey",
    "SandboxSettings",
    "UploadedFile",
]
