import Dispatch
import PrecLabSupport

/// The one progress display of every command, on stderr.
///
/// `--progress auto` (the default) redraws a line in place with elapsed time and ETA,
/// only when stderr is a terminal, at most five times a second and only once a job has
/// run for half a second; otherwise it prints nothing. `--progress plain` prints one
/// plain line per stage (for logs). `--progress none` and `--quiet` print nothing.
/// Thread-safe: parallel workers report.
final class ProgressReporter: ProgressReporting, @unchecked Sendable {
    enum Mode: String {
        case auto, plain, none
    }

    static let spec = OptionSpec.value("--progress")

    private let label: String
    private let mode: Mode
    private let lock = Lock()
    private var start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private var stage = ""
    private var totalWork = 0.0
    private var totalItems = 0
    private var doneWork = 0.0
    private var doneItems = 0

    init(label: String, mode: Mode) {
        self.label = label
        self.mode = mode == .auto && !Console.stderrIsTerminal ? .none : mode
    }

    /// The reporter a command's `--progress` and `--quiet` ask for.
    convenience init(command: String, arguments: ParsedArguments) throws {
        var mode = Mode.auto
        if let text = arguments.value("--progress") {
            guard let parsed = Mode(rawValue: text) else {
                throw UsageError("invalid value '\(text)' for --progress (expected auto, plain or none)")
            }
            mode = parsed
        }
        if arguments.flag("--quiet") { mode = .none }
        self.init(label: "preclab \(command)", mode: mode)
    }

    func begin(_ stage: String, work: [Double]) {
        lock.withLock {
            self.stage = stage
            start = DispatchTime.now().uptimeNanoseconds
            lastDraw = 0
            totalWork = max(work.reduce(0, +), 1)
            totalItems = work.count
            doneWork = 0
            doneItems = 0
            if mode == .plain {
                Console.error("\(label): \(stage)" + (work.isEmpty ? "" : " (\(work.count) item\(work.count == 1 ? "" : "s"))"))
            }
        }
    }

    /// A one-line stage without items (a sweep's synth, replay and spectral steps).
    func stage(_ text: String) {
        begin(text, work: [])
        lock.withLock { draw(fraction: 0, complete: false, detail: text, immediately: true) }
    }

    func finished(_ item: String, work: Double) {
        lock.withLock {
            doneWork += work
            doneItems += 1
            draw(fraction: doneWork / totalWork, complete: doneItems == totalItems,
                 detail: "\(stage) [\(doneItems)/\(totalItems)] \(item)")
        }
    }

    func update(done: Int, total: Int) {
        update(done: done, total: total, note: nil)
    }

    /// As `update(done:total:)`, with a short note after the count (a training run's
    /// loss and reward).
    func update(done: Int, total: Int, note: String?) {
        lock.withLock {
            draw(fraction: total > 0 ? Double(done) / Double(total) : 1, complete: done == total,
                 detail: "\(stage) \(done)/\(total)" + (total > 0 ? " (\(Int(100 * Double(done) / Double(total)))%)" : "")
                    + (note.map { "  \($0)" } ?? ""))
        }
    }

    func end() {
        lock.withLock {
            if drawn { Console.endProgress() }
            drawn = false
        }
    }

    private func draw(fraction: Double, complete: Bool, detail: String, immediately: Bool = false) {
        guard mode == .auto else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if !immediately {
            guard now - lastDraw >= 200_000_000 || (complete && drawn) else { return }
            guard now - start >= 500_000_000 else { return }
        }
        lastDraw = now
        drawn = true
        let elapsed = Double(now - start) / 1e9
        var text = "\(label): \(detail)"
        if fraction > 0, fraction < 1 {
            text += ", ETA \(formatDuration(elapsed * (1 - fraction) / fraction))"
        }
        if !immediately { text += ", \(formatDuration(elapsed)) elapsed" }
        Console.progress(text)
    }

    private func formatDuration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }
}
