/// Scratch slices of one tile, allocated once per tile and batch of steps (not per
/// step), sized by the tile: memory independent of the number of steps.
final class TileScratch<Code> {
    /// The scaled update (`--scale`).
    let scaled: UnsafeMutablePointer<Float>?
    /// Nearest-even export of the truth after the current step, and before it.
    var export: UnsafeMutablePointer<Code>?
    var previousExport: UnsafeMutablePointer<Code>?
    /// The truth and a stored policy's codes before the current step (step views).
    let previousTruth: UnsafeMutablePointer<Float>?
    let previousCodes: UnsafeMutablePointer<Code>?
    /// Ratio bin of each element's update against the pure policy's half-ULP.
    let bins: UnsafeMutablePointer<UInt8>?
    /// 64 bytes for `StepKernels.markLeftInterval`.
    let flags: UnsafeMutablePointer<UInt8> = .allocate(capacity: 64)

    init(length: Int, scaled: Bool, export: Bool, views: Bool) {
        let capacity = max(length, 1)
        self.scaled = scaled ? .allocate(capacity: capacity) : nil
        self.export = export ? .allocate(capacity: capacity) : nil
        previousExport = export && views ? .allocate(capacity: capacity) : nil
        previousTruth = views ? .allocate(capacity: capacity) : nil
        previousCodes = views ? .allocate(capacity: capacity) : nil
        bins = views ? .allocate(capacity: capacity) : nil
    }

    func release() {
        scaled?.deallocate()
        export?.deallocate()
        previousExport?.deallocate()
        previousTruth?.deallocate()
        previousCodes?.deallocate()
        bins?.deallocate()
        flags.deallocate()
    }
}
