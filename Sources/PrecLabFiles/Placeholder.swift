// PrecLabFiles: placeholder until the module lands.
enum PrecLabFilesPlaceholder {}
