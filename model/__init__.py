"""The trace world model: encoders, flow decoder, flow math, training, sampling, checkpoints."""
