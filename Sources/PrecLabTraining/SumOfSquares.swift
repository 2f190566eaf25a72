/// Σ x² of fp32 values in float64, vectorised with a fixed order: lane j of four
/// float64 accumulators takes the elements i ≡ j (mod 4) of the leading multiple of
/// four, the lanes are added in order, then the tail elements one by one. The same
/// input always gives the same bits.
@inline(__always)
func sumOfSquares(_ values: UnsafePointer<Float>, _ count: Int) -> Double {
    var lanes = SIMD4<Double>()
    var index = 0
    while index + 4 <= count {
        let x = SIMD4<Double>(Double(values[index]), Double(values[index + 1]),
                              Double(values[index + 2]), Double(values[index + 3]))
        lanes += x * x   // not addingProduct: without FMA in the target it is a libm call
        index += 4
    }
    var total = ((lanes[0] + lanes[1]) + lanes[2]) + lanes[3]
    while index < count {
        let x = Double(values[index])
        total += x * x
        index += 1
    }
    return total
}

func sumOfSquares(_ values: [Float]) -> Double {
    values.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, $0.count) }
}
