"""Atomic writes live in `smoothie_cli.atomic` (below `models/`, since `packages` writes atomically too); this
name stays for the modules that still import it from here."""

from smoothie_cli.atomic import atomic_directory, remove_stale_temps, write_bytes_atomic, write_text_atomic

__all__ = ["atomic_directory", "remove_stale_temps", "write_bytes_atomic", "write_text_atomic"]
