extension StochasticKey {
    /// Fills `buffer[0..<count]` with `randomBits(index: firstIndex + i)`.
    ///
    /// The key state and the per-block keys are computed once per 2^32-element block
    /// instead of once per element, which leaves a loop of 32-bit integer hashes that
    /// vectorises: the replay's stochastic policies draw their bits this way.
    @inlinable
    public func fillRandomBits(from firstIndex: Int, count: Int, into buffer: UnsafeMutablePointer<UInt32>) {
        let state = self.state
        var position = 0
        while position < count {
            let index = firstIndex + position
            let (k1, k2) = StochasticKey.blockKeys(state: state, index: index)
            // Elements up to the end of this 2^32 block share the keys.
            let blockEnd = (index | 0xFFFF_FFFF) &+ 1
            let run = min(count - position, blockEnd - index)
            let low = UInt32(truncatingIfNeeded: index)
            // 32-bit lane arithmetic only (no checked Int adds in the body): vectorises.
            let output = buffer + position
            var counter = low
            for offset in 0..<run {
                output[offset] = StochasticKey.lowbias32(counter ^ k1) ^ k2
                counter &+= 1
            }
            position += run
        }
    }
}

extension StochasticKey {
    /// The two keys shared by every element of the 2^32-element block holding `index`:
    /// `randomBits(index: i) == StochasticKey.hash(UInt32(truncatingIfNeeded: i) ^ k1) ^ k2`
    /// for every i of that block. Lets a caller draw the bits of a run of elements in
    /// its own (vectorised) loop.
    @inlinable
    public func blockKeys(forIndex index: Int) -> (k1: UInt32, k2: UInt32) {
        let keys = StochasticKey.blockKeys(state: state, index: index)
        return (keys.0, keys.1)
    }

    /// The 32-bit integer hash behind `randomBits` (Wellons' lowbias32).
    @inlinable @inline(__always)
    public static func hash(_ value: UInt32) -> UInt32 { lowbias32(value) }
}
