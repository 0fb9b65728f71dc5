"""The motor bus: request/reply transactions with bounded retries over one serial port.

This is the ONE place where status error bits become exceptions (`ServoError` subclasses) and where
corrupt, truncated or missing replies are retried a bounded number of times before a clean
`ProtocolError` / `ServoTimeoutError`. Registers are addressed by name through the protocol's table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import ModuleType

import serial

from robot import errors
from robot.errors import ProtocolError, RobotError, ServoError, ServoTimeoutError, TransportError
from robot.protocol import dynamixel, feetech
from robot.protocol.common import StatusPacket
from robot.protocol.tables import MOTION_REGISTERS, Register, decode_value, encode_value
from robot.transport import DEFAULT_BAUDRATE, open_transport

log = logging.getLogger(__name__)

PROTOCOLS: dict[str, ModuleType] = {"feetech": feetech, "dynamixel": dynamixel}

# Status condition name -> exception class; first match in this order wins, all are named in the message.
CONDITION_ERRORS: dict[str, type[ServoError]] = {
    "overload": errors.ServoOverloadError,
    "overheat": errors.ServoOverheatError,
    "overcurrent": errors.ServoOverCurrentError,
    "voltage": errors.ServoVoltageError,
    "angle_sensor": errors.ServoAngleSensorError,
    "hardware_alert": errors.ServoHardwareAlert,
}
CONDITION_FIXES: dict[type[ServoError], str] = {
    errors.ServoOverloadError: "remove the obstruction or load, then power-cycle the arm",
    errors.ServoOverheatError: "let the servo cool down and lower the duty",
    errors.ServoOverCurrentError: "check for a blocked joint, then power-cycle the arm",
    errors.ServoVoltageError: "check the power supply voltage (STS3215: 7.4 V or 12 V model)",
    errors.ServoAngleSensorError: "the servo's encoder is faulty; replace the servo",
    errors.ServoHardwareAlert: "read Hardware_Error_Status, fix the cause, then reboot the servo",
    errors.ServoInstructionError: "the request was rejected; check register and value",
}


@dataclass
class BusConfig:
    """Settings of one motor bus.

    Attributes:
        baudrate: serial speed in bit/s (1,000,000 for STS3215 and our Dynamixel arms).
        timeout_s: how long to wait for one reply, in seconds.
        retries: extra attempts after the first for a request that expects a reply (bounded).
    """

    baudrate: int = DEFAULT_BAUDRATE
    timeout_s: float = 0.05
    retries: int = 3


class MotorBus:
    """A servo bus on one port, speaking one protocol ("feetech" or "dynamixel")."""

    def __init__(self, port: str, protocol: str, config: BusConfig | None = None, names: dict[int, str] | None = None):
        if protocol not in PROTOCOLS:
            raise errors.RobotError(f"unknown servo protocol {protocol!r}; use one of {sorted(PROTOCOLS)}")
        self.url = port
        self.protocol: ModuleType = PROTOCOLS[protocol]
        self.config = config or BusConfig()
        self.names = dict(names or {})
        self.port: serial.SerialBase | None = None
        self.motion_packets_sent = 0  # Goal_Position writes and torque-enable writes
        self.retries_used = 0
        self._rx = b""  # received bytes not consumed yet

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the serial port (idempotent)."""
        if self.port is None:
            self.port = open_transport(self.url, self.config.baudrate, self.config.timeout_s)

    def close(self) -> None:
        """Close the serial port (idempotent)."""
        if self.port is not None:
            self.port.close()
            self.port = None

    def __enter__(self) -> MotorBus:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def register(self, name: str) -> Register:
        """The protocol's register table entry for `name`."""
        try:
            return self.protocol.REGISTERS[name]
        except KeyError:
            raise errors.RobotError(f"{self.protocol.NAME} servos have no register {name!r}") from None

    def label(self, servo_id: int) -> str:
        """How messages name a servo, e.g. "servo 3 (elbow_flex)"."""
        name = self.names.get(servo_id)
        return f"servo {servo_id} ({name})" if name else f"servo {servo_id}"

    # -- public requests -------------------------------------------------------------------------
    def ping(self, servo_id: int) -> int:
        """Ping a servo and return its model number (Feetech: read from the Model_Number register)."""
        if self.protocol is dynamixel:
            status = self._transact(self.protocol.ping(servo_id), [servo_id], 3, "PING")[0]
            return int.from_bytes(status.params[:2], "little")
        self._transact(self.protocol.ping(servo_id), [servo_id], 0, "PING")
        return self.read(servo_id, "Model_Number")

    def scan(self, servo_ids: range | list[int]) -> dict[int, int]:
        """Ping each ID once (no retries) and return {id: model number} of those that answered.

        Useful when the IDs on a bus are unknown; an absent ID costs one reply timeout."""
        found = {}
        retries, self.config.retries = self.config.retries, 0
        try:
            for servo_id in servo_ids:
                try:
                    found[servo_id] = self.ping(servo_id)
                except (ServoTimeoutError, ProtocolError) as exc:
                    log.debug("scan: %s", exc)
        finally:
            self.config.retries = retries
        return found

    def read(self, servo_id: int, name: str) -> int:
        """Read one register of one servo, decoded (signed where the register is)."""
        register = self.register(name)
        packet = self.protocol.read(servo_id, register.address, register.size)
        status = self._transact(packet, [servo_id], register.size, f"READ {name}")[0]
        return decode_value(register, status.params)

    def write(self, servo_id: int, name: str, value: int) -> None:
        """Write one register of one servo and wait for its acknowledgement."""
        register = self.register(name)
        packet = self.protocol.write(servo_id, register.address, encode_value(register, value))
        self._count_motion(name, [value])
        self._transact(packet, [servo_id], 0, f"WRITE {name}={value}")

    def sync_read(self, name: str, servo_ids: list[int]) -> dict[int, int]:
        """Read one register of several servos with one SYNC_READ; returns id -> decoded value."""
        register = self.register(name)
        packet = self.protocol.sync_read(register.address, register.size, list(servo_ids))
        replies = self._transact(packet, list(servo_ids), register.size, f"SYNC_READ {name}")
        return {status.servo_id: decode_value(register, status.params) for status in replies}

    def sync_write(self, name: str, values: dict[int, int]) -> None:
        """Write one register of several servos with one SYNC_WRITE (no reply, so no retry)."""
        register = self.register(name)
        data = {servo_id: encode_value(register, value) for servo_id, value in values.items()}
        self._count_motion(name, list(values.values()))
        self._send(self.protocol.sync_write(register.address, register.size, data))

    # -- the transaction core --------------------------------------------------------------------
    def _count_motion(self, name: str, values: list[int]) -> None:
        # Torque-off writes release the motors and are not counted: they cannot drive a joint.
        if name == "Goal_Position" or (name in MOTION_REGISTERS and any(values)):
            self.motion_packets_sent += 1

    def _require_port(self) -> serial.SerialBase:
        if self.port is None:
            raise TransportError(f"bus on {self.url!r} is not open; call connect() (or open()) first")
        return self.port

    def _send(self, packet: bytes) -> None:
        port = self._require_port()
        try:
            port.reset_input_buffer()  # drop stale replies and line noise before a new request
            self._rx = b""
            port.write(packet)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"writing to {self.url!r} failed ({exc}); check the USB cable") from exc

    def _transact(self, packet: bytes, servo_ids: list[int], n_params: int, what: str) -> list[StatusPacket]:
        """Send `packet`, collect one status per ID, retrying corrupt/missing replies; check error bits."""
        attempts = self.config.retries + 1
        last: RobotError | None = None
        for attempt in range(attempts):
            self._send(packet)
            try:
                replies = [self._receive(servo_id, n_params, what) for servo_id in servo_ids]
            except (ProtocolError, ServoTimeoutError) as exc:
                last = exc
                self.retries_used += int(attempt < attempts - 1)
                log.debug("%s attempt %d/%d failed: %s", what, attempt + 1, attempts, exc)
                continue
            for status in replies:
                self._raise_for_status(status, what)
            return replies
        raise type(last)(
            f"{last} ({attempts} attempts on {self.url}); check power, wiring and baud rate, "
            "or raise BusConfig.retries"
        )

    def _receive(self, servo_id: int, n_params: int, what: str) -> StatusPacket:
        """Read one status packet for `servo_id`, skipping garbage before its header; bytes after it
        stay in `self._rx` for the next reply of a SYNC_READ."""
        port = self._require_port()
        expected = (6 if self.protocol is feetech else 11) + n_params
        received = len(self._rx)
        rejected: ProtocolError | None = None
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            timed_out = time.monotonic() >= deadline
            status, self._rx, error = scan_status(self.protocol, self._rx, servo_id, n_params, exhausted=timed_out)
            rejected = error or rejected
            if status is not None:
                return status
            if timed_out or (error is not None and not self._rx):
                break  # time is up, or a complete reply was corrupt: retry now instead of waiting
            try:
                chunk = port.read(max(1, expected - len(self._rx)))
            except (serial.SerialException, OSError) as exc:
                raise TransportError(f"reading from {self.url!r} failed ({exc}); check the USB cable") from exc
            self._rx, received = self._rx + chunk, received + len(chunk)
        label = self.label(servo_id)
        if rejected is not None:
            raise ProtocolError(f"{label} sent no valid reply to {what}: {rejected}")
        if received:
            raise ProtocolError(f"{label} sent a truncated reply to {what} ({received} bytes)")
        raise ServoTimeoutError(f"{label} did not answer {what} within {self.config.timeout_s * 1000:.0f} ms")

    def _raise_for_status(self, status: StatusPacket, what: str) -> None:
        """The one choke point: status error bits -> a ServoError subclass naming servo and fix."""
        if not status.error:
            return
        conditions = self.protocol.describe_error(status.error)
        cls = next((CONDITION_ERRORS[c] for c in conditions if c in CONDITION_ERRORS), errors.ServoInstructionError)
        raise cls(
            f"{self.label(status.servo_id)} reports {', '.join(conditions)} (error byte 0x{status.error:02x}) "
            f"during {what}; {CONDITION_FIXES[cls]}"
        )



def scan_status(
    protocol: ModuleType, buffer: bytes, servo_id: int, n_params: int, exhausted: bool = False
) -> tuple[StatusPacket | None, bytes, ProtocolError | None]:
    """Find the first valid status packet from `servo_id` with `n_params` data bytes in a byte stream.

    Garbage before a header is skipped; a frame that fails its checksum/ID/length checks (a corrupt
    reply, or a false header inside noise) is skipped one byte at a time.

    Args:
        protocol: `feetech` or `dynamixel`.
        buffer: bytes received so far.
        servo_id: the servo whose reply is wanted.
        n_params: data bytes the reply must carry.
        exhausted: no more bytes will come; an incomplete frame is then treated as noise too.

    Returns:
        (status or None, the bytes left after it (or still pending), the last rejection if any).
    """
    rejected = None
    while True:
        start, end = protocol.find_frame(buffer)
        buffer = buffer[start:]
        if end is not None:
            try:
                return protocol.parse_status(buffer[: end - start], servo_id, n_params), buffer[end - start :], rejected
            except ProtocolError as exc:
                rejected, buffer = exc, buffer[1:]
                continue
        if exhausted and buffer:
            buffer = buffer[1:]
            continue
        return None, buffer, rejected
