import PrecLabFiles
import PrecLabSupport

/// What a synthetic stream costs, computed from the shapes and steps before anything
/// is allocated or written, so that a run the machine cannot hold is refused up front.
public enum SynthResources {
    /// Bytes of the stream file: preamble, header (at most `headerAllowance`) and
    /// (steps + 2) records (BASE, STEPs, FINL) of 4 bytes per weight plus framing.
    public static func fileBytes(steps: Int, elements: Int, tensorCount: Int) -> Int? {
        let headerAllowance = 4096 + tensorCount * 256
        guard let payload = ResourceBudget.product(elements, 4),
              let records = ResourceBudget.product(steps + 2, payload + UpdateStreamFormat.recordHeaderSize
                                                   + UpdateStreamFormat.recordTrailerSize) else { return nil }
        let (total, overflow) = records.addingReportingOverflow(UpdateStreamFormat.preambleSize + headerAllowance)
        return overflow ? nil : total
    }

    /// Peak bytes of memory: per weight, the AdamW state (weights, two moments, delta,
    /// signal: 5 fp32) and the record payload (1 fp32); per matrix while its base is
    /// generated or decomposed, float64 work arrays of about 4 values per weight.
    public static func memoryBytes(shapes: [(rows: Int, columns: Int)]) -> Int? {
        var elements = 0, largest = 0
        for shape in shapes {
            guard let count = ResourceBudget.product(shape.rows, shape.columns) else { return nil }
            let (sum, overflow) = elements.addingReportingOverflow(count)
            if overflow { return nil }
            elements = sum
            largest = max(largest, count)
        }
        guard let state = ResourceBudget.product(elements, 6 * 4), let work = ResourceBudget.product(largest, 4 * 8) else {
            return nil
        }
        let (total, overflow) = state.addingReportingOverflow(work)
        return overflow ? nil : total
    }

    /// Refuses (exit 1) a stream that would not fit in memory or on the disk at `output`.
    public static func requireFits(steps: Int, shapes: [(rows: Int, columns: Int)], output: String) throws {
        let elements = shapes.reduce(0) { $0 &+ $1.rows &* $1.columns }
        guard let memory = memoryBytes(shapes: shapes),
              let file = fileBytes(steps: steps, elements: elements, tensorCount: shapes.count) else {
            throw PrecLabError.badData("\(output): \(steps) steps of \(elements) weights overflow any size this machine can hold")
        }
        try ResourceBudget.requireMemory(memory, for: "\(output): simulating \(elements) weights")
        try ResourceBudget.requireDisk(file, forOutput: output, what: "the stream (\(steps + 2) records of \(elements) weights)")
    }
}
