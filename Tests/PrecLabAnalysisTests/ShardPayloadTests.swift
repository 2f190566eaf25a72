@testable import PrecLabAnalysis
import PrecLabSupport
import XCTest

/// The shard payload must carry every Double bit for bit: merged totals are summed from
/// the decoded values, and the merged JSON must equal the unsharded one byte for byte.
final class ShardPayloadTests: XCTestCase {
    private struct Values: Codable { var values: [Double]; var optional: [Double?]; var counts: [UInt16] }

    func testDoublesSurviveBitForBit() throws {
        var values: [Double] = [0, -0.0, 0.1, 1.0 / 3, -2.5e-8, 1e300, -1e-300, 123456789012345680, 1e15, 1e16,
                                Double.leastNonzeroMagnitude, -Double.leastNormalMagnitude,
                                Double.leastNormalMagnitude.nextDown, Double.greatestFiniteMagnitude,
                                (0.1).nextUp, (0.1).nextDown, 4.0.nextDown, .infinity, -.infinity]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let candidate = Double(bitPattern: state)
            if !candidate.isNaN { values.append(candidate) }
        }
        let original = Values(values: values, optional: [nil, .nan, 2.0, nil], counts: [0, 1, 65535])
        let decoded = try ShardStamp.decode(Values.self, from: ShardStamp.encode(original))
        XCTAssertEqual(decoded.values.map(\.bitPattern), values.map(\.bitPattern))
        XCTAssertNil(decoded.optional[0])
        XCTAssertTrue(decoded.optional[1]!.isNaN)
        XCTAssertEqual(decoded.optional[2], 2.0)
        XCTAssertNil(decoded.optional[3])
        XCTAssertEqual(decoded.counts, [0, 1, 65535])
    }

    /// The digest is FNV-1a 64 (published test vectors).
    func testFingerprintDigest() {
        XCTAssertEqual(ShardStamp.fnv1a64(""), "cbf29ce484222325")
        XCTAssertEqual(ShardStamp.fnv1a64("a"), "af63dc4c8601ec8c")
        XCTAssertEqual(ShardStamp.fnv1a64("foobar"), "85944171f73967e8")
    }
}
