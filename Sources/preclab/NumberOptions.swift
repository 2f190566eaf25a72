import PrecLabSupport

/// How a numeric option is read and what it accepts. Each rule has one wording, so an
/// option's mistakes read the same in every command:
/// `invalid value 'TEXT' for OPTION (expected WHAT)`.
struct NumberRule<Value>: Sendable {
    /// What the option accepts, e.g. "an integer >= 1".
    let expected: String
    let parse: @Sendable (String) -> Value?
}

extension NumberRule where Value == Int {
    /// Counts, sizes, thread numbers.
    static let positive = NumberRule(expected: "an integer >= 1") { Int($0).flatMap { $0 >= 1 ? $0 : nil } }

    /// Counts that may be zero (warm-up steps, evaluation intervals).
    static let nonNegative = NumberRule(expected: "an integer >= 0") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }

    /// An integer of at least `minimum`, e.g. a group of two or more samples.
    static func atLeast(_ minimum: Int) -> NumberRule {
        NumberRule(expected: "an integer >= \(minimum)") { Int($0).flatMap { $0 >= minimum ? $0 : nil } }
    }

    /// An integer in `bounds`, e.g. step counts.
    static func within(_ bounds: ClosedRange<Int>) -> NumberRule {
        NumberRule(expected: "an integer in [\(bounds.lowerBound), \(bounds.upperBound)]") { text in
            Int(text).flatMap { bounds.contains($0) ? $0 : nil }
        }
    }
}

extension NumberRule where Value == UInt64 {
    /// Seeds.
    static let seed = NumberRule(expected: "an integer in [0, 2^64)") { UInt64($0) }
}

extension NumberRule where Value == Double {
    /// Fractions such as --alpha.
    static let unitInterval = NumberRule(expected: "a number in [0, 1]") { text in
        Double(text).flatMap { $0 >= 0 && $0 <= 1 ? $0 : nil }
    }
    /// Learning rates and other magnitudes.
    static let nonNegativeFinite = NumberRule(expected: "a finite number >= 0") { text in
        Double(text).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
    }
    /// Any number a model may refuse later in its own validation.
    static let any = NumberRule(expected: "a number") { Double($0) }
}

extension NumberRule where Value == Float {
    /// fp32 factors such as replay's --scale (any sign, zero included).
    static let finiteFloat = NumberRule(expected: "a finite number") { text in
        Float(text).flatMap { $0.isFinite ? $0 : nil }
    }
}

extension ParsedArguments {
    /// The option's value read by `rule`, or `defaultValue` when absent.
    func number<Value>(_ name: String, _ rule: NumberRule<Value>, default defaultValue: Value) throws -> Value {
        try number(name, rule) ?? defaultValue
    }

    /// The option's value read by `rule`, or nil when absent.
    func number<Value>(_ name: String, _ rule: NumberRule<Value>) throws -> Value? {
        guard let text = value(name) else { return nil }
        guard let parsed = rule.parse(text) else {
            throw UsageError("invalid value '\(text)' for \(name) (expected \(rule.expected))")
        }
        return parsed
    }
}

extension ParsedArguments {
    /// The option's value as one of `Value`'s cases, or nil when absent; any other word
    /// is `invalid value 'TEXT' for OPTION (expected a, b or c)`.
    func choice<Value>(_ name: String, _ type: Value.Type) throws -> Value?
    where Value: RawRepresentable & CaseIterable, Value.RawValue == String {
        guard let text = value(name) else { return nil }
        guard let parsed = Value(rawValue: text) else {
            let names = Value.allCases.map(\.rawValue)
            let listed = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
            throw UsageError("invalid value '\(text)' for \(name) (expected \(listed))")
        }
        return parsed
    }
}
