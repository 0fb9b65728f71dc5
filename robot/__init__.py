"""Robot layer: transport, servo protocols, bus, kinematics, calibration, planning, safety, sim."""
