// PrecLabSpectral: placeholder until the module lands.
enum PrecLabSpectralPlaceholder {}
