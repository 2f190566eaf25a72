import Dispatch

/// A progress line on stderr with rate and ETA, redrawn at most a few times a second.
final class ProgressMeter {
    private let label: String
    private let enabled: Bool
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var drawn = false

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    func update(done: Int, total: Int) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let interval: UInt64 = Console.stderrIsTerminal ? 200_000_000 : 5_000_000_000
        guard now - lastDraw >= interval || (done == total && drawn) else { return }
        // Quick jobs print nothing: only draw after the first half second.
        guard now - start >= 500_000_000 else { return }
        lastDraw = now
        drawn = true
        let elapsed = Double(now - start) / 1e9
        var text = "\(label): \(done)/\(total)"
        if total > 0 {
            text += " (\(Int(100 * Double(done) / Double(total)))%)"
            if done > 0, done < total {
                let remaining = elapsed / Double(done) * Double(total - done)
                text += ", ETA \(formatDuration(remaining))"
            }
        }
        text += ", \(formatDuration(elapsed)) elapsed"
        Console.progress(text)
    }

    func finish() {
        if drawn { Console.endProgress() }
    }

    private func formatDuration(_ seconds: Double) -> String {
        if seconds < 60 { return "\(Int(seconds.rounded()))s" }
        let minutes = Int(seconds) / 60
        return "\(minutes)m\(Int(seconds) % 60)s"
    }
}
