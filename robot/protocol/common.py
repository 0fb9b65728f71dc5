"""Packet types shared by the Feetech and Dynamixel protocol modules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusPacket:
    """A decoded status (reply) packet.

    Attributes:
        servo_id: the replying servo's ID.
        error: the raw error byte (bits for Feetech; alert bit + error number for Dynamixel).
        params: the payload after the error byte (read data, ping data).
    """

    servo_id: int
    error: int
    params: bytes


@dataclass(frozen=True)
class InstructionPacket:
    """A decoded instruction packet (what a servo, or our emulator, receives).

    Attributes:
        servo_id: target ID (the protocol's broadcast ID for sync instructions).
        instruction: instruction code (PING 0x01, READ 0x02, WRITE 0x03, SYNC_READ 0x82, ...).
        params: the parameters, unstuffed.
    """

    servo_id: int
    instruction: int
    params: bytes


PING, READ, WRITE, REG_WRITE, ACTION, REBOOT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x08
SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE = 0x82, 0x83, 0x92, 0x93
INSTRUCTION_NAMES: dict[int, str] = {
    PING: "PING", READ: "READ", WRITE: "WRITE", REG_WRITE: "REG_WRITE", ACTION: "ACTION",
    REBOOT: "REBOOT", SYNC_READ: "SYNC_READ", SYNC_WRITE: "SYNC_WRITE", BULK_READ: "BULK_READ",
    BULK_WRITE: "BULK_WRITE",
}
