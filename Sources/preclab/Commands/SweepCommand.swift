import Foundation
import PrecLabExperiments
import PrecLabReports
import PrecLabSupport

/// `preclab sweep FILE --out DIR`: runs a declarative experiment (experiments/*.json):
/// synthesises a stream per grid point, replays it, and writes CSV, SVG plots and a
/// README with the headline table.
enum SweepCommand: Command {
    static let name = "sweep"
    static let summary = "run an experiment file: synthesise and replay a grid of streams, write CSV, plots, README"
    static let help = """
    usage: preclab sweep EXPERIMENT.json --out DIR [--force] [--keep-streams] [--quiet]

    Runs the experiment described by EXPERIMENT.json (format: docs/experiments.md).
    For every grid point it synthesises an update stream (as 'preclab synth' does) into
    a scratch directory under $TMPDIR, replays it (as 'preclab replay' does) and, when
    asked, computes the spectral metrics of the fp32 truth W0 -> W_T. A stream shared by
    several grid points (e.g. a dtype axis) is synthesised once. Then it writes into DIR:
      summary.csv    a row per grid point and policy (and 'null' for the null model)
      sparsity.svg   sparsity per policy against the grid
      README.md      the question, what the model builds in, what is measured against
                     which control, the settings and the headline tables
    and, for each entry of "outputs": curve.csv + visible_vs_step.svg (curve),
    magnitude.csv + visible_by_magnitude.svg (magnitude), spectral.csv +
    spectral_drift.svg, spectral_angles.svg, spectral_overlaps.svg (spectral).

    options:
      --out DIR         output directory (required; created when missing)
      --force           replace existing output files
      --keep-streams    keep the synthesised streams in DIR/streams/ instead of deleting them
      --threads N       worker threads (results never depend on it)
      --progress MODE   auto (a line redrawn on a terminal, nothing otherwise), plain
                        (a line per stage) or none
      --quiet           no progress lines and no table

    The experiment file is checked completely before anything runs; every output is
    written atomically, and existing outputs are refused before any work without --force.
    Exit status: 0 success, 2 a bad experiment file (the message names the file and the
    key) or bad usage.
    """
    static let options: [OptionSpec] = [
        .value("--out", short: "-o"), .flag("--force"), .flag("--keep-streams"), .value("--threads"),
        .flag("--quiet"), ProgressReporter.spec,
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let file = try arguments.requirePositionals(1, names: "one experiment file")[0]
        guard let out = arguments.value("--out"), !out.isEmpty else {
            throw UsageError("--out DIR is required (see 'preclab help sweep')")
        }
        let threads = try arguments.number("--threads", .positive, default: ParallelChunks.threadCount)
        let force = arguments.flag("--force")
        let quiet = arguments.flag("--quiet")
        let experiment = try ExperimentParser.load(path: file)

        // Refuse existing outputs (and an output path that is a file) before any work.
        let directoryPath = out.hasSuffix("/") ? String(out.dropLast()) : out
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directoryPath, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw UsageError("\(directoryPath): exists and is not a directory (--out needs a directory)")
        }
        for name in SweepReport.fileNames(for: experiment) {
            try AtomicFileWriter.checkDestination(directoryPath + "/" + name, force: force, inputs: [file])
        }
        let keepIn: String? = arguments.flag("--keep-streams") ? directoryPath + "/streams" : nil
        let progress = try ProgressReporter(command: "\(name) \(experiment.name)", arguments: arguments)
        let runner = SweepRunner(experiment: experiment, keepStreamsIn: keepIn, force: force, threads: threads) { message in
            progress.stage(message)
        }
        if let keepIn {
            for name in runner.streamFileNames {
                try AtomicFileWriter.checkDestination(keepIn + "/" + name, force: force, inputs: [file])
            }
            _ = try ReportDirectory(path: keepIn, force: force)
        }
        let results = try runner.run()
        progress.end()
        let report = SweepReport(experiment: experiment, results: results, source: file, outputDirectory: directoryPath)
        let directory = try ReportDirectory(path: directoryPath, force: force, inputs: [file])
        try directory.write(report.files())
        if !quiet {
            Console.out(report.terminalTable().render(width: TextTable.terminalColumns()))
            Console.out("wrote \(directoryPath)/: " + SweepReport.fileNames(for: experiment).joined(separator: ", "))
        }
    }
}
