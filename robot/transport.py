"""Transport tier: a serial port opened by URL (`/dev/ttyACM0`, `loop://`, an emulator's pty path).

Everything above this module talks to a `serial.SerialBase`; `serial.serial_for_url` picks the
implementation from the URL, so tests and the emulator need no special code path.
"""

from __future__ import annotations

import logging

import serial

from robot.errors import TransportError

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 1_000_000


def open_transport(url: str, baudrate: int = DEFAULT_BAUDRATE, timeout_s: float = 0.05) -> serial.SerialBase:
    """Open a serial port by URL.

    Args:
        url: a device path, `loop://`, or any pyserial URL (`socket://host:port`, `rfc2217://...`).
        baudrate: bits per second (Feetech STS and our arms default to 1,000,000).
        timeout_s: read timeout in seconds for one `read(n)` call.

    Returns:
        An open pyserial port with input and output buffers flushed.

    Raises:
        TransportError: the port does not exist, is busy, or refuses the settings.
    """
    try:
        port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s, write_timeout=1.0)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(
            f"cannot open serial port {url!r} at {baudrate} baud ({exc}); "
            "list ports with `tracegen robot ports` or start one with `tracegen robot emulate`"
        ) from exc
    try:
        port.reset_input_buffer()
        port.reset_output_buffer()
    except (serial.SerialException, OSError) as exc:  # a port that vanished right after opening
        port.close()
        raise TransportError(f"serial port {url!r} failed right after opening ({exc}); reconnect it") from exc
    log.debug("opened %s at %d baud", url, baudrate)
    return port
