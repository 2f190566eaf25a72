// PrecLabReplay: placeholder until the module lands.
enum PrecLabReplayPlaceholder {}
