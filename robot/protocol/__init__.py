"""Servo protocols as pure byte functions: Feetech STS and Dynamixel Protocol 2.0; register tables."""
