// PrecLabSynth: placeholder until the module lands.
enum PrecLabSynthPlaceholder {}
