"""Errors raised by the robot layer. Messages name the bad value and the fix, in one line."""


class RobotError(Exception):
    """Base of every robot error; the CLI prints its message and exits with code 1."""


class TransportError(RobotError, OSError):
    """The serial port could not be opened, or a read timed out after the allowed retries."""


class ProtocolError(RobotError, ValueError):
    """A status packet with a bad checksum/CRC, a wrong ID or length, or garbage."""


class ServoError(RobotError):
    """A servo reported error bits (voltage, overheat, overload, ...)."""


class SafetyError(RobotError, ValueError):
    """A plan that violates a limit; raised before any byte that moves the arm is sent."""


class CalibrationError(RobotError, ValueError):
    """A calibration file that is missing, malformed or inconsistent with the arm."""
