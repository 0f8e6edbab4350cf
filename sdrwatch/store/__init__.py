"""The collector's SQLite store (sqlite-utils): alerts, their events, health, evidence, sites, receivers,
sessions, dispositions and spectrum snapshots. Tables are documented in docs/network.md."""
from .db import Item, Store, StoreError  # noqa: F401
