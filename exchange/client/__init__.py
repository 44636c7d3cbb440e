"""The contractor-side client: pull the feed, open sealed fields, keep a local store, delete on
tombstones and acknowledge the deletion (`exchange contractor sync`)."""

from exchange.client.store import LocalStore
from exchange.client.sync import SyncError, SyncResult, sync

__all__ = ["LocalStore", "SyncError", "SyncResult", "sync"]
