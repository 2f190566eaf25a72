import PrecLabSupport

/// An option a command accepts: `--name VALUE` (or `--name=VALUE`) when it takes a
/// value, a bare `--name` flag otherwise.
struct OptionSpec: Sendable {
    let name: String
    let takesValue: Bool
    let repeatable: Bool
    let short: String?

    static func value(_ name: String, short: String? = nil, repeatable: Bool = false) -> OptionSpec {
        OptionSpec(name: name, takesValue: true, repeatable: repeatable, short: short)
    }

    static func flag(_ name: String, short: String? = nil) -> OptionSpec {
        OptionSpec(name: name, takesValue: false, repeatable: false, short: short)
    }
}

/// A command line split into options and positional arguments, checked against the
/// command's `OptionSpec`s.
///
/// Arguments that look like negative numbers (`-1.5`, `-inf`, `-.5`) are positional,
/// so `preclab round -1.5` works; `--` ends option parsing.
struct ParsedArguments {
    let command: String
    private(set) var positionals: [String] = []
    private var values: [String: [String]] = [:]
    private var flags: Set<String> = []

    init(command: String, arguments: [String], options: [OptionSpec]) throws {
        self.command = command
        var byName: [String: OptionSpec] = [:]
        for spec in options {
            byName[spec.name] = spec
            if let short = spec.short { byName[short] = spec }
        }
        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if optionsEnded || !ParsedArguments.looksLikeOption(argument) {
                positionals.append(argument)
                continue
            }
            if argument == "--" { optionsEnded = true; continue }
            var name = argument
            var inlineValue: String? = nil
            if let equals = argument.firstIndex(of: "="), argument.hasPrefix("--") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            guard let spec = byName[name] else {
                throw UsageError("unknown option '\(name)' (see 'preclab help \(command)')")
            }
            if spec.takesValue {
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    guard index < arguments.count else {
                        throw UsageError("option \(spec.name) needs a value")
                    }
                    value = arguments[index]
                    index += 1
                }
                // No option takes an empty value (an empty path or name is never meant);
                // refusing it here keeps every command from meeting one.
                guard !value.isEmpty else {
                    throw UsageError("option \(spec.name) needs a non-empty value")
                }
                if !spec.repeatable, values[spec.name] != nil {
                    throw UsageError("option \(spec.name) given twice")
                }
                values[spec.name, default: []].append(value)
            } else {
                if inlineValue != nil {
                    throw UsageError("option \(spec.name) takes no value")
                }
                flags.insert(spec.name)
            }
        }
    }

    private static func looksLikeOption(_ argument: String) -> Bool {
        guard argument.hasPrefix("-"), argument.count > 1 else { return false }
        let rest = argument.dropFirst()
        if let first = rest.first, first.isNumber || first == "." { return false }
        let lowered = rest.lowercased()
        if lowered == "inf" || lowered == "infinity" || lowered == "nan" { return false }
        return true
    }

    /// The value of an option, or nil when absent.
    func value(_ name: String) -> String? { values[name]?.last }

    /// Every value of a repeatable option, in order.
    func allValues(_ name: String) -> [String] { values[name] ?? [] }

    /// Whether a flag was given.
    func flag(_ name: String) -> Bool { flags.contains(name) }

    /// Exactly `count` positional arguments, or a usage error naming what is missing.
    func requirePositionals(_ count: Int, names: String) throws -> [String] {
        guard positionals.count == count else {
            throw UsageError("expected \(names) (see 'preclab help \(command)')")
        }
        return positionals
    }

    /// At least one positional argument.
    func requireSomePositionals(names: String) throws -> [String] {
        guard !positionals.isEmpty else {
            throw UsageError("expected \(names) (see 'preclab help \(command)')")
        }
        return positionals
    }
}
