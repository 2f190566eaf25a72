/// The preclab release, printed by `preclab --version` and recorded in outputs.
public let precLabVersion = "0.1.0"
