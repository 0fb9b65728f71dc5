"""Feetech STS/SCS protocol as pure byte functions (SO-100 / SO-101 arms).

Instruction: `FF FF | ID | LEN | INSTR | params | CHK`, `LEN = len(params) + 2`,
`CHK = ~(ID + LEN + INSTR + sum(params)) & 0xFF`. Status: `FF FF | ID | LEN | ERR | params | CHK`.
Multi-byte fields are little-endian (STS); sign-magnitude encodings live in `tables.py`.
"""

from __future__ import annotations

from robot.errors import ProtocolError
from robot.protocol.common import (
    PING,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    InstructionPacket,
    StatusPacket,
)
from robot.protocol.tables import STS_REGISTERS, Register

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD
NAME = "feetech"
REGISTERS: dict[str, Register] = STS_REGISTERS

# Status error bits -> condition name (the bus maps names to exception classes).
ERROR_BITS: dict[int, str] = {
    0x01: "voltage",
    0x02: "angle_sensor",
    0x04: "overheat",
    0x08: "overcurrent",
    0x20: "overload",
}


def checksum(body: bytes) -> int:
    """Checksum of everything after the header and before the checksum byte: `~sum & 0xFF`."""
    return ~sum(body) & 0xFF


def _packet(servo_id: int, code: int, params: bytes) -> bytes:
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id {servo_id} is outside 0..{BROADCAST_ID}")
    if len(params) > 250:
        raise ValueError(f"{len(params)} parameter bytes exceed the 250-byte packet limit")
    body = bytes([servo_id, len(params) + 2, code]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Encode an instruction packet (`FF FF ID LEN INSTR params CHK`)."""
    return _packet(servo_id, instruction, params)


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    """Encode a status packet (`FF FF ID LEN ERR params CHK`), as a servo sends it."""
    return _packet(servo_id, error, params)


def ping(servo_id: int) -> bytes:
    """PING one servo; it answers with an empty status packet."""
    return instruction_packet(servo_id, PING)


def read(servo_id: int, address: int, size: int) -> bytes:
    """READ `size` bytes from `address` of one servo."""
    return instruction_packet(servo_id, READ, bytes([address, size]))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    """WRITE `data` at `address` of one servo (it replies unless `servo_id` is the broadcast ID)."""
    return instruction_packet(servo_id, WRITE, bytes([address]) + bytes(data))


def sync_write(address: int, size: int, data_by_id: dict[int, bytes]) -> bytes:
    """SYNC_WRITE the same register of several servos in one packet (no reply).

    Args:
        address: register address.
        size: bytes per servo.
        data_by_id: servo id -> exactly `size` bytes, sent in the dict's order.
    """
    params = bytearray([address, size])
    for servo_id, data in data_by_id.items():
        if len(data) != size:
            raise ValueError(f"servo {servo_id}: {len(data)} data bytes, expected {size}")
        params += bytes([servo_id]) + bytes(data)
    return instruction_packet(BROADCAST_ID, SYNC_WRITE, bytes(params))


def sync_read(address: int, size: int, servo_ids: list[int]) -> bytes:
    """SYNC_READ one register of several servos; each answers with its own status packet, in order."""
    return instruction_packet(BROADCAST_ID, SYNC_READ, bytes([address, size, *servo_ids]))


def find_frame(buffer: bytes) -> tuple[int, int | None]:
    """Locate the first packet in a byte stream.

    Args:
        buffer: bytes received so far.

    Returns:
        (start, end): `buffer[start:end]` is one whole packet (checksum not yet verified); `end` is
        None while more bytes are needed. Bytes before `start` are garbage to discard; with no header
        at all, start is the position from which a header could still begin.
    """
    index = 0
    while True:
        index = buffer.find(HEADER, index)
        if index < 0:
            return (len(buffer) - 1 if buffer.endswith(b"\xff") else len(buffer)), None
        if len(buffer) < index + 3:
            return index, None
        if buffer[index + 2] > MAX_ID and buffer[index + 2] != BROADCAST_ID:  # FF FF FF: shift by one
            index += 1
            continue
        if len(buffer) < index + 4:
            return index, None
        length = buffer[index + 3]
        if length < 2:  # impossible length: the header was noise
            index += 1
            continue
        end = index + 4 + length
        return index, (end if len(buffer) >= end else None)


def _split(packet: bytes) -> tuple[int, int, bytes]:
    """Check header, length and checksum; return (id, code byte, params)."""
    if len(packet) < 6 or packet[:2] != HEADER:
        raise ProtocolError(f"feetech packet {packet.hex(' ')!r} is truncated or has no FF FF header")
    length = packet[3]
    if len(packet) != length + 4:
        raise ProtocolError(f"feetech packet length byte says {length + 4} bytes, got {len(packet)}")
    expected = checksum(packet[2:-1])
    if packet[-1] != expected:
        raise ProtocolError(
            f"feetech packet {packet.hex(' ')} has checksum 0x{packet[-1]:02x}, expected 0x{expected:02x}"
        )
    return packet[2], packet[4], bytes(packet[5:-1])


def parse_status(packet: bytes, expected_id: int | None = None, expected_params: int | None = None) -> StatusPacket:
    """Decode and validate one status packet.

    Raises:
        ProtocolError: bad header, length, checksum, unexpected ID or payload size.
    """
    servo_id, error, params = _split(packet)
    if expected_id is not None and servo_id != expected_id:
        raise ProtocolError(f"status packet from servo {servo_id}, expected servo {expected_id}")
    if expected_params is not None and len(params) != expected_params:
        raise ProtocolError(f"servo {servo_id} returned {len(params)} data bytes, expected {expected_params}")
    return StatusPacket(servo_id, error, params)


def parse_instruction(packet: bytes) -> InstructionPacket:
    """Decode and validate one instruction packet (the servo side)."""
    servo_id, instruction, params = _split(packet)
    return InstructionPacket(servo_id, instruction, params)


def parse_sync_write(params: bytes) -> tuple[int, dict[int, bytes]]:
    """Split SYNC_WRITE parameters into (address, {servo id: data})."""
    address, size = params[0], params[1]
    entries = params[2:]
    if size == 0 or len(entries) % (size + 1):
        raise ProtocolError(f"SYNC_WRITE of {size}-byte fields has {len(entries)} entry bytes")
    step = size + 1
    return address, {entries[i]: bytes(entries[i + 1 : i + step]) for i in range(0, len(entries), step)}


def parse_sync_read(params: bytes) -> tuple[int, int, list[int]]:
    """Split SYNC_READ parameters into (address, size, servo ids)."""
    if len(params) < 3:
        raise ProtocolError(f"SYNC_READ needs address, size and at least one ID, got {params.hex(' ')}")
    return params[0], params[1], list(params[2:])


def decode_read_params(params: bytes) -> tuple[int, int]:
    """READ parameters -> (address, size)."""
    if len(params) != 2:
        raise ProtocolError(f"READ needs 2 parameter bytes (address, size), got {len(params)}")
    return params[0], params[1]


def decode_write_params(params: bytes) -> tuple[int, bytes]:
    """WRITE parameters -> (address, data)."""
    if len(params) < 2:
        raise ProtocolError(f"WRITE needs an address and data, got {len(params)} bytes")
    return params[0], bytes(params[1:])


def describe_error(error: int) -> list[str]:
    """Condition names of the bits set in a status error byte (unknown bits as 'bit N')."""
    names = [name for bit, name in ERROR_BITS.items() if error & bit]
    unknown = error & ~sum(ERROR_BITS)
    names += [f"bit {n}" for n in range(8) if unknown & (1 << n)]
    return names
