/// Where a long library call reports how far it got. The `preclab` executable draws it
/// on stderr; a Swift caller may log it or pass nil. Implementations must be
/// thread-safe: parallel workers report.
public protocol ProgressReporting: Sendable {
    /// A stage begins; `work` holds the relative cost of each of its items (empty when
    /// the stage counts equal items with `update(done:total:)`).
    func begin(_ stage: String, work: [Double])
    /// One item of the current stage finished.
    func finished(_ item: String, work: Double)
    /// `done` of `total` equal items of the current stage finished.
    func update(done: Int, total: Int)
    /// The current stage ended.
    func end()
}
