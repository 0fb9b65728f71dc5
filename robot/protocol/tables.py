"""Servo register tables as data: name -> (address, size in bytes, sign encoding).

Feetech STS (SO-100/SO-101, STS3215) and Dynamixel X-series (Koch) control tables, from the vendors'
manuals (see `../shared/reference/ROBOT.md`). The protocol modules encode and decode values with
these entries; nothing else in the project hard-codes an address.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Register:
    """One control-table entry.

    Attributes:
        name: register name as in the vendor manual (e.g. "Goal_Position").
        address: first byte of the register in the servo's memory.
        size: width in bytes (1, 2 or 4), little-endian.
        sign_bit: Feetech sign-magnitude sign bit (15 for position/velocity, 11 for homing offset,
            10 for load), or None for unsigned / two's-complement fields.
        signed: True for two's-complement fields (Dynamixel positions, loads).
    """

    name: str
    address: int
    size: int
    sign_bit: int | None = None
    signed: bool = False


def _table(*registers: Register) -> dict[str, Register]:
    return {register.name: register for register in registers}


STS_REGISTERS: dict[str, Register] = _table(
    Register("Firmware_Major_Version", 0, 1),
    Register("Firmware_Minor_Version", 1, 1),
    Register("Model_Number", 3, 2),
    Register("ID", 5, 1),
    Register("Baud_Rate", 6, 1),
    Register("Return_Delay_Time", 7, 1),
    Register("Min_Position_Limit", 9, 2),
    Register("Max_Position_Limit", 11, 2),
    Register("Max_Torque_Limit", 16, 2),
    Register("P_Coefficient", 21, 1),
    Register("D_Coefficient", 22, 1),
    Register("I_Coefficient", 23, 1),
    Register("Protection_Current", 28, 2),
    Register("Homing_Offset", 31, 2, sign_bit=11),
    Register("Operating_Mode", 33, 1),
    Register("Torque_Enable", 40, 1),
    Register("Acceleration", 41, 1),
    Register("Goal_Position", 42, 2, sign_bit=15),
    Register("Goal_Time", 44, 2),
    Register("Goal_Velocity", 46, 2, sign_bit=15),
    Register("Torque_Limit", 48, 2),
    Register("Lock", 55, 1),
    Register("Present_Position", 56, 2, sign_bit=15),
    Register("Present_Velocity", 58, 2, sign_bit=15),
    Register("Present_Load", 60, 2, sign_bit=10),
    Register("Present_Voltage", 62, 1),
    Register("Present_Temperature", 63, 1),
    Register("Moving", 66, 1),
    Register("Present_Current", 69, 2),
)

XSERIES_REGISTERS: dict[str, Register] = _table(
    Register("Model_Number", 0, 2),
    Register("Firmware_Version", 6, 1),
    Register("ID", 7, 1),
    Register("Baud_Rate", 8, 1),
    Register("Return_Delay_Time", 9, 1),
    Register("Drive_Mode", 10, 1),
    Register("Operating_Mode", 11, 1),
    Register("Homing_Offset", 20, 4, signed=True),
    Register("Max_Position_Limit", 48, 4),
    Register("Min_Position_Limit", 52, 4),
    Register("Torque_Enable", 64, 1),
    Register("LED", 65, 1),
    Register("Status_Return_Level", 68, 1),
    Register("Hardware_Error_Status", 70, 1),
    Register("Bus_Watchdog", 98, 1, signed=True),
    Register("Goal_PWM", 100, 2, signed=True),
    Register("Goal_Velocity", 104, 4, signed=True),
    Register("Profile_Acceleration", 108, 4),
    Register("Profile_Velocity", 112, 4),
    Register("Goal_Position", 116, 4, signed=True),
    Register("Moving", 122, 1),
    Register("Present_Load", 126, 2, signed=True),
    Register("Present_Velocity", 128, 4, signed=True),
    Register("Present_Position", 132, 4, signed=True),
    Register("Present_Input_Voltage", 144, 2),
    Register("Present_Temperature", 146, 1),
)

# Model numbers reported by PING (Dynamixel) or the Model_Number register (Feetech).
MODEL_NUMBERS: dict[str, int] = {
    "sts3215": 777,
    "xl430-w250": 1060,
    "xl330-m288": 1200,
    "xl330-m077": 1190,
    "xm430-w350": 1020,
}
MODEL_NAMES: dict[int, str] = {number: name for name, number in MODEL_NUMBERS.items()}

# Registers that make a servo move (or hold) when written: the "motion bytes" counted by the bus.
MOTION_REGISTERS: tuple[str, ...] = ("Goal_Position", "Torque_Enable")


def encode_value(register: Register, value: int) -> bytes:
    """Encode an integer into the register's little-endian bytes.

    Args:
        register: the table entry (its sign encoding decides sign-magnitude vs two's complement).
        value: the value in servo units (raw steps, 0.1 % load, ...).

    Returns:
        `register.size` bytes, little-endian.

    Raises:
        ValueError: the value does not fit the register.
    """
    value = int(value)
    if register.sign_bit is not None:
        magnitude = abs(value)
        if magnitude >= 1 << register.sign_bit:
            raise ValueError(f"{register.name}={value} does not fit {register.sign_bit} magnitude bits")
        raw = magnitude | ((1 << register.sign_bit) if value < 0 else 0)
    elif register.signed:
        low, high = -(1 << (8 * register.size - 1)), 1 << (8 * register.size - 1)
        if not low <= value < high:
            raise ValueError(f"{register.name}={value} does not fit a signed {register.size}-byte field")
        raw = value & ((1 << (8 * register.size)) - 1)
    else:
        if not 0 <= value < 1 << (8 * register.size):
            raise ValueError(f"{register.name}={value} does not fit an unsigned {register.size}-byte field")
        raw = value
    return raw.to_bytes(register.size, "little")


def decode_value(register: Register, data: bytes) -> int:
    """Decode the register's little-endian bytes into a signed or unsigned integer.

    Args:
        register: the table entry.
        data: exactly `register.size` bytes.

    Returns:
        The value in servo units.
    """
    if len(data) != register.size:
        raise ValueError(f"{register.name} needs {register.size} bytes, got {len(data)}")
    raw = int.from_bytes(data, "little")
    if register.sign_bit is not None:
        magnitude = raw & ((1 << register.sign_bit) - 1)
        return -magnitude if raw & (1 << register.sign_bit) else magnitude
    if register.signed and raw & (1 << (8 * register.size - 1)):
        return raw - (1 << (8 * register.size))
    return raw
