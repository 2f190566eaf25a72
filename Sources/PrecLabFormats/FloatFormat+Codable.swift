/// A format is encoded as its canonical name and decoded with `FloatFormat.named`, so
/// results that carry their format (sharded runs, `preclab merge`) read back exactly.
extension FloatFormat: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        self = try FloatFormat.named(name)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
