"""Fault injection for the servo emulator: corrupt, cut, drop or prefix replies, or set error bits.

A fault spec string is a comma-separated list of `KIND[@ID][*COUNT]`:
- `bad_checksum`, `truncated`, `missing`, `garbage` damage the reply bytes (garbage = noise bytes sent
  before the reply, which a correct reader skips);
- a status condition name (`overload`, `overheat`, `overcurrent`, `voltage`, `angle_sensor` for
  Feetech; `hardware_alert`, `result_fail`, `data_range`, `access`, ... for Dynamixel) sets that error
  in the reply's error byte.
`@ID` limits the fault to one servo (default: every servo); `*COUNT` to the next COUNT replies
(default: every reply, until cleared). Example: `missing@3*2,overload@2`.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from types import ModuleType

from robot.errors import RobotError

BYTE_FAULTS: tuple[str, ...] = ("bad_checksum", "truncated", "missing", "garbage")
_SPEC = re.compile(r"^(?P<kind>[a-z_]+)(?:@(?P<id>\d+))?(?:\*(?P<count>\d+))?$")


class FaultSpecError(RobotError, ValueError):
    """A fault spec string that cannot be parsed."""


@dataclass
class Fault:
    """One injected fault.

    Attributes:
        kind: one of BYTE_FAULTS, or a status condition name of the emulated protocol.
        servo_id: the servo whose replies are affected, or None for every servo.
        count: how many more replies to affect, or None for all of them.
    """

    kind: str
    servo_id: int | None = None
    count: int | None = None

    def matches(self, servo_id: int) -> bool:
        return (self.servo_id is None or self.servo_id == servo_id) and (self.count is None or self.count > 0)


def condition_error_byte(protocol: ModuleType, condition: str) -> int | None:
    """The status error byte that reports `condition` in `protocol`, or None if it has no such condition."""
    if hasattr(protocol, "ERROR_BITS"):
        return next((bit for bit, name in protocol.ERROR_BITS.items() if name == condition), None)
    if condition == "hardware_alert":
        return protocol.ALERT_BIT
    return next((number for number, name in protocol.ERROR_NUMBERS.items() if name == condition), None)


def parse_faults(spec: str | None, protocol: ModuleType) -> list[Fault]:
    """Parse a fault spec string (see the module docstring) for the given protocol module.

    Raises:
        FaultSpecError: an unknown kind or malformed entry, naming it and the accepted kinds.
    """
    faults = []
    for entry in (spec or "").replace(" ", "").split(","):
        if not entry:
            continue
        match = _SPEC.match(entry.replace("-", "_"))
        kind = match["kind"] if match else None
        if kind is None or (kind not in BYTE_FAULTS and condition_error_byte(protocol, kind) is None):
            conditions = getattr(protocol, "ERROR_BITS", None) or {0: "hardware_alert", **protocol.ERROR_NUMBERS}
            raise FaultSpecError(
                f"fault {entry!r} is not KIND, KIND@ID or KIND@ID*COUNT with KIND one of "
                f"{', '.join(BYTE_FAULTS + tuple(conditions.values()))}"
            )
        servo_id = int(match["id"]) if match["id"] else None
        faults.append(Fault(kind, servo_id, int(match["count"]) if match["count"] else None))
    return faults


class FaultInjector:
    """Applies the active faults to the emulator's replies (thread-safe; tests add faults at run time)."""

    def __init__(self, protocol: ModuleType, faults: list[Fault] | None = None, seed: int = 0):
        self.protocol = protocol
        self.faults: list[Fault] = list(faults or [])
        self.injected = 0  # replies affected so far
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault | str) -> None:
        """Activate a fault (a Fault or a spec string)."""
        new = parse_faults(fault, self.protocol) if isinstance(fault, str) else [fault]
        with self._lock:
            self.faults.extend(new)

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self.faults.clear()

    def _take(self, servo_id: int, kinds) -> list[Fault]:
        taken = [f for f in self.faults if f.kind in kinds and f.matches(servo_id)]
        for fault in taken:
            if fault.count is not None:
                fault.count -= 1
        self.faults = [f for f in self.faults if f.count is None or f.count > 0]
        return taken

    def error_byte(self, servo_id: int) -> int:
        """Error bits to put in this servo's next reply (consumes counted condition faults)."""
        with self._lock:
            conditions = [f for f in self.faults if f.kind not in BYTE_FAULTS and f.matches(servo_id)]
            taken = self._take(servo_id, {f.kind for f in conditions})
        error = 0
        for fault in taken:
            error |= condition_error_byte(self.protocol, fault.kind) or 0
        self.injected += bool(taken)
        return error

    def damage(self, servo_id: int, reply: bytes) -> bytes:
        """Apply byte faults to one encoded reply; returns what goes on the wire (maybe nothing)."""
        with self._lock:
            taken = {f.kind for f in self._take(servo_id, BYTE_FAULTS)}
        self.injected += bool(taken)
        if "missing" in taken:
            return b""
        if "bad_checksum" in taken:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        if "truncated" in taken:
            reply = reply[: max(1, len(reply) // 2)]
        if "garbage" in taken:
            noise = bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(3, 12)))
            reply = noise + reply
        return reply
