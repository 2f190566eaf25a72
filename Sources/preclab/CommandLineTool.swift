import PrecLabSupport

/// Dispatch for `preclab COMMAND ...`, `--help`, `help COMMAND` and `--version`.
enum CommandLineTool {
    /// Every subcommand, in the order `preclab --help` lists them.
    nonisolated(unsafe) static let commands: [any Command.Type] = [
        FormatsCommand.self,
        RoundCommand.self,
        InspectCommand.self,
        CastCommand.self,
        SynthCommand.self,
        ReplayCommand.self,
        CompareCommand.self,
        ConsistencyCommand.self,
        SweepCommand.self,
        TrainCommand.self,
        MergeCommand.self,
    ]

    static func run(_ arguments: [String]) -> Int32 {
        guard let first = arguments.first else {
            Console.error(overview)
            return 2
        }
        switch first {
        case "--help", "-h":
            Console.out(overview)
            return 0
        case "--version", "-V", "version":
            Console.out("preclab \(precLabVersion)")
            return 0
        case "help":
            guard arguments.count > 1 else {
                Console.out(overview)
                return 0
            }
            guard let command = command(named: arguments[1]) else {
                Console.error("preclab: error: unknown command '\(arguments[1])'\n\n" + overview)
                return 2
            }
            Console.out(command.help)
            return 0
        default:
            break
        }
        guard let command = command(named: first) else {
            Console.error("preclab: error: unknown command '\(first)' (see 'preclab --help')")
            return 2
        }
        let rest = Array(arguments.dropFirst())
        if rest.contains("--help") || rest.contains("-h") {
            Console.out(command.help)
            return 0
        }
        InFlightFiles.installSignalCleanup(program: "preclab \(command.name)")
        do {
            let parsed = try ParsedArguments(command: command.name, arguments: rest, options: command.options)
            try command.run(parsed)
            return 0
        } catch {
            Console.error(CommandError.message(error, command: command.name))
            return CommandError.exitStatus(error)
        }
    }

    static func command(named name: String) -> (any Command.Type)? {
        commands.first { $0.name == name }
    }

    static var overview: String {
        let width = commands.map { $0.name.count }.max() ?? 0
        var lines = [
            "preclab \(precLabVersion): a precision-simulation laboratory for low-precision training",
            "",
            "usage: preclab COMMAND [ARGUMENTS] [OPTIONS]",
            "",
            "commands:",
        ]
        for command in commands {
            let padding = String(repeating: " ", count: width - command.name.count)
            lines.append("  \(command.name)\(padding)  \(command.summary)")
        }
        lines += [
            "",
            "  help COMMAND   show the options of a command",
            "  --version      print the version",
            "",
            "exit status: 0 success, 1 bad data, 2 bad usage",
        ]
        return lines.joined(separator: "\n")
    }
}
