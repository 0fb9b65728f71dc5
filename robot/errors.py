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


class KinematicsError(RobotError, ValueError):
    """A joint vector or target the kinematic chain cannot use (wrong length, not finite)."""


class PlanningError(RobotError, ValueError):
    """A trace that cannot become a motion plan (no depth, no gripper points, bad schedule)."""


class CameraCalibrationError(RobotError, ValueError):
    """A camera-to-base file or hand-eye data set that is missing, malformed or degenerate."""


class ControlError(RobotError):
    """Motion stopped by a fault (bus errors past the retries, tracking error, overload); the arm was
    brought to a safe stop (hold, slow move to rest, torque off) before this was raised."""


# --- bus layer (robot/bus.py is the one place that raises the Servo* classes) -------------------------


class ServoTimeoutError(TransportError):
    """A servo did not answer within the reply timeout, after the allowed retries."""


class ServoVoltageError(ServoError):
    """A servo reports its input voltage out of range."""


class ServoAngleSensorError(ServoError):
    """A servo reports a faulty position (angle) sensor."""


class ServoOverheatError(ServoError):
    """A servo reports overheating."""


class ServoOverCurrentError(ServoError):
    """A servo reports over-current."""


class ServoOverloadError(ServoError):
    """A servo reports a sustained overload (it is blocked or carrying too much)."""


class ServoHardwareAlert(ServoError):
    """A Dynamixel servo raised its hardware-alert bit (see its Hardware_Error_Status register)."""


class ServoInstructionError(ServoError):
    """A servo rejected an instruction (Dynamixel result fail, CRC, data range/length/limit, access)."""


class ModelMismatchError(RobotError, ValueError):
    """A servo at an expected ID reports a different model number than the arm needs."""
