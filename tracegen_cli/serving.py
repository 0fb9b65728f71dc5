"""Keep a foreground server (a virtual arm on a pty) alive until Ctrl-C or a deadline."""

from __future__ import annotations

import time


def serve_until_interrupted(duration: float) -> None:
    """Block until Ctrl-C, or for `duration` seconds when it is positive (tests use that)."""
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
