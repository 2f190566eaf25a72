import Dispatch
import PrecLabSupport

/// A progress line on stderr with elapsed time and ETA, redrawn at most a few times a
/// second (every 5 s when stderr is not a terminal) and only once a job has run for half
/// a second, so quick jobs print nothing. Thread-safe: parallel workers may report.
final class ProgressMeter: @unchecked Sendable {
    private let label: String
    private let enabled: Bool
    private let lock = Lock()
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var drawn = false
    // Weighted mode (`init(label:work:enabled:)`, `finished(_:work:)`).
    private var totalWork = 0.0
    private var totalItems = 0
    private var doneWork = 0.0
    private var doneItems = 0

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    /// Items of unequal cost: the ETA follows the work done, not the item count.
    convenience init(label: String, work: [Double], enabled: Bool = true) {
        self.init(label: label, enabled: enabled)
        totalWork = max(work.reduce(0, +), 1)
        totalItems = work.count
    }

    /// `done` of `total` equal items finished.
    func update(done: Int, total: Int) {
        lock.withLock {
            draw(fraction: total > 0 ? Double(done) / Double(total) : 1, complete: done == total,
                 detail: "\(done)/\(total)" + (total > 0 ? " (\(Int(100 * Double(done) / Double(total)))%)" : ""))
        }
    }

    /// One weighted item finished (weighted mode).
    func finished(_ item: String, work: Double) {
        lock.withLock {
            doneWork += work
            doneItems += 1
            draw(fraction: doneWork / totalWork, complete: doneItems == totalItems,
                 detail: "[\(doneItems)/\(totalItems)] \(item)")
        }
    }

    /// Ends a redrawn progress line.
    func finish() {
        lock.withLock { if drawn { Console.endProgress() } }
    }

    private func draw(fraction: Double, complete: Bool, detail: String) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let interval: UInt64 = Console.stderrIsTerminal ? 200_000_000 : 5_000_000_000
        guard now - lastDraw >= interval || (complete && drawn) else { return }
        guard now - start >= 500_000_000 else { return }
        lastDraw = now
        drawn = true
        let elapsed = Double(now - start) / 1e9
        var text = "\(label): \(detail)"
        if fraction > 0, fraction < 1 {
            text += ", ETA \(formatDuration(elapsed * (1 - fraction) / fraction))"
        }
        text += ", \(formatDuration(elapsed)) elapsed"
        Console.progress(text)
    }

    private func formatDuration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 60 ? "\(whole / 60)m\(whole % 60)s" : "\(whole)s"
    }
}
