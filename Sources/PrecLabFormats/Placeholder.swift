// PrecLabFormats: placeholder until the module lands.
enum PrecLabFormatsPlaceholder {}
