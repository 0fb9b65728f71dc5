"""Dynamixel Protocol 2.0 as pure byte functions (Koch, OpenManipulator; X-series servos).

Instruction: `FF FF FD 00 | ID | LEN_L LEN_H | INSTR | params | CRC_L CRC_H`, `LEN` counts the
instruction, the (stuffed) parameters and the CRC. Status: `... | 0x55 | ERR | params | CRC`.
CRC-16: polynomial 0x8005, init 0, no reflection, over every byte before the CRC. Byte stuffing:
`FF FF FD` inside instruction+params is sent as `FF FF FD FD`.
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
from robot.protocol.tables import XSERIES_REGISTERS, Register

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
STATUS = 0x55
NAME = "dynamixel"
REGISTERS: dict[str, Register] = XSERIES_REGISTERS

ALERT_BIT = 0x80
# Error numbers (low 7 bits of the status error byte) -> condition name.
ERROR_NUMBERS: dict[int, str] = {
    1: "result_fail",
    2: "instruction_error",
    3: "crc_error",
    4: "data_range",
    5: "data_length",
    6: "data_limit",
    7: "access",
}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0, no reflection) of `data`."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert an extra 0xFD after every `FF FF FD` in instruction+params (the header never appears)."""
    out = bytearray()
    for index, byte in enumerate(body):
        out.append(byte)
        if byte == 0xFD and index >= 2 and body[index - 2] == 0xFF and body[index - 1] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Remove the 0xFD inserted by `stuff`: `FF FF FD FD` -> `FF FF FD`."""
    out = bytearray()
    index = 0
    while index < len(body):
        out.append(body[index])
        if body[index] == 0xFD and len(out) >= 3 and out[-3:-1] == b"\xff\xff" and body[index + 1 : index + 2] == b"\xfd":
            index += 1  # skip the stuffing byte
        index += 1
    return bytes(out)


def _packet(servo_id: int, body: bytes) -> bytes:
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id {servo_id} is outside 0..{BROADCAST_ID}")
    stuffed = stuff(body)
    length = len(stuffed) + 2
    head = HEADER + bytes([servo_id]) + length.to_bytes(2, "little") + stuffed
    return head + crc16(head).to_bytes(2, "little")


def instruction_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Encode an instruction packet with stuffing and CRC."""
    return _packet(servo_id, bytes([instruction]) + bytes(params))


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    """Encode a status packet (`... 0x55 ERR params CRC`), as a servo sends it."""
    return _packet(servo_id, bytes([STATUS, error]) + bytes(params))


def ping(servo_id: int) -> bytes:
    """PING one servo; it answers with model number (2 bytes) and firmware version (1 byte)."""
    return instruction_packet(servo_id, PING)


def read(servo_id: int, address: int, size: int) -> bytes:
    """READ `size` bytes from `address` of one servo."""
    return instruction_packet(servo_id, READ, address.to_bytes(2, "little") + size.to_bytes(2, "little"))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    """WRITE `data` at `address` of one servo."""
    return instruction_packet(servo_id, WRITE, address.to_bytes(2, "little") + bytes(data))


def sync_write(address: int, size: int, data_by_id: dict[int, bytes]) -> bytes:
    """SYNC_WRITE one register of several servos (no reply); `data_by_id` values are `size` bytes."""
    params = bytearray(address.to_bytes(2, "little") + size.to_bytes(2, "little"))
    for servo_id, data in data_by_id.items():
        if len(data) != size:
            raise ValueError(f"servo {servo_id}: {len(data)} data bytes, expected {size}")
        params += bytes([servo_id]) + bytes(data)
    return instruction_packet(BROADCAST_ID, SYNC_WRITE, bytes(params))


def sync_read(address: int, size: int, servo_ids: list[int]) -> bytes:
    """SYNC_READ one register of several servos; each answers with its own status packet, in order."""
    params = address.to_bytes(2, "little") + size.to_bytes(2, "little") + bytes(servo_ids)
    return instruction_packet(BROADCAST_ID, SYNC_READ, params)


def find_frame(buffer: bytes) -> tuple[int, int | None]:
    """Locate the first packet in a byte stream; see `feetech.find_frame` for the contract."""
    index = buffer.find(HEADER)
    if index < 0:
        for keep in (3, 2, 1):  # a header may be split across reads
            if buffer.endswith(HEADER[:keep]):
                return len(buffer) - keep, None
        return len(buffer), None
    if len(buffer) < index + 7:
        return index, None
    length = int.from_bytes(buffer[index + 5 : index + 7], "little")
    end = index + 7 + length
    return index, (end if len(buffer) >= end else None)


def _split(packet: bytes) -> tuple[int, bytes]:
    """Check header, length and CRC; return (id, unstuffed instruction+params)."""
    if len(packet) < 10 or packet[:4] != HEADER:
        raise ProtocolError(f"dynamixel packet {packet.hex(' ')!r} is truncated or has no FF FF FD 00 header")
    length = int.from_bytes(packet[5:7], "little")
    if len(packet) != length + 7:
        raise ProtocolError(f"dynamixel packet length field says {length + 7} bytes, got {len(packet)}")
    expected = crc16(packet[:-2])
    received = int.from_bytes(packet[-2:], "little")
    if received != expected:
        raise ProtocolError(f"dynamixel packet has CRC 0x{received:04x}, expected 0x{expected:04x}")
    return packet[4], unstuff(packet[7:-2])


def parse_status(packet: bytes, expected_id: int | None = None, expected_params: int | None = None) -> StatusPacket:
    """Decode and validate one status packet.

    Raises:
        ProtocolError: bad header, length, CRC, not a status packet, unexpected ID or payload size.
    """
    servo_id, body = _split(packet)
    if len(body) < 2 or body[0] != STATUS:
        raise ProtocolError(f"dynamixel packet from servo {servo_id} is not a status packet (0x55)")
    if expected_id is not None and servo_id != expected_id:
        raise ProtocolError(f"status packet from servo {servo_id}, expected servo {expected_id}")
    params = bytes(body[2:])
    if expected_params is not None and len(params) != expected_params:
        raise ProtocolError(f"servo {servo_id} returned {len(params)} data bytes, expected {expected_params}")
    return StatusPacket(servo_id, body[1], params)


def parse_instruction(packet: bytes) -> InstructionPacket:
    """Decode and validate one instruction packet (the servo side)."""
    servo_id, body = _split(packet)
    if not body:
        raise ProtocolError(f"dynamixel packet to servo {servo_id} has no instruction byte")
    return InstructionPacket(servo_id, body[0], bytes(body[1:]))


def parse_sync_write(params: bytes) -> tuple[int, dict[int, bytes]]:
    """Split SYNC_WRITE parameters into (address, {servo id: data})."""
    address, size = int.from_bytes(params[0:2], "little"), int.from_bytes(params[2:4], "little")
    entries = params[4:]
    if size == 0 or len(entries) % (size + 1):
        raise ProtocolError(f"SYNC_WRITE of {size}-byte fields has {len(entries)} entry bytes")
    step = size + 1
    return address, {entries[i]: bytes(entries[i + 1 : i + step]) for i in range(0, len(entries), step)}


def parse_sync_read(params: bytes) -> tuple[int, int, list[int]]:
    """Split SYNC_READ parameters into (address, size, servo ids)."""
    if len(params) < 5:
        raise ProtocolError(f"SYNC_READ needs address, size and at least one ID, got {params.hex(' ')}")
    return int.from_bytes(params[0:2], "little"), int.from_bytes(params[2:4], "little"), list(params[4:])


def decode_read_params(params: bytes) -> tuple[int, int]:
    """READ parameters -> (address, size)."""
    if len(params) != 4:
        raise ProtocolError(f"READ needs 4 parameter bytes (address16, size16), got {len(params)}")
    return int.from_bytes(params[0:2], "little"), int.from_bytes(params[2:4], "little")


def decode_write_params(params: bytes) -> tuple[int, bytes]:
    """WRITE parameters -> (address, data)."""
    if len(params) < 3:
        raise ProtocolError(f"WRITE needs a 2-byte address and data, got {len(params)} bytes")
    return int.from_bytes(params[0:2], "little"), bytes(params[2:])


def describe_error(error: int) -> list[str]:
    """Condition names in a status error byte: 'hardware_alert' for bit 7, then the error number."""
    names = ["hardware_alert"] if error & ALERT_BIT else []
    number = error & 0x7F
    if number:
        names.append(ERROR_NUMBERS.get(number, f"error {number}"))
    return names
