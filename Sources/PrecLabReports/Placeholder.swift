// PrecLabReports: placeholder until the module lands.
enum PrecLabReportsPlaceholder {}
