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
            for offset in 0..<run {
                buffer[position + offset] = StochasticKey.lowbias32((low &+ UInt32(truncatingIfNeeded: offset)) ^ k1) ^ k2
            }
            position += run
        }
    }
}
