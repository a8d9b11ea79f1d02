"""What /proc says about a process: see :mod:`registry.procinfo` (the store's temp sweep uses it too)."""

from registry.procinfo import alive, proc_start_time

__all__ = ["alive", "proc_start_time"]
