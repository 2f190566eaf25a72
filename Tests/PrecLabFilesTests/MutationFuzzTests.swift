import XCTest
@testable import PrecLabFiles

/// A small deterministic mutation fuzzer run with the tests (the libFuzzer build is
/// `make fuzz`): seeded byte flips, truncations, insertions and 64-bit field overwrites
/// of valid files, each fed to every parser. Passing means no crash or trap, and that
/// the inputs really reached every parser: each unmutated seed is accepted by the parser
/// it was made for, and each parser both accepted and rejected some mutants.
final class MutationFuzzTests: XCTestCase {
    func testMutatedFilesNeverCrashTheParsers() {
        let seeds: [(bytes: [UInt8], parser: FuzzTargets.Parser)] = [
            (UpdateStreamTests.pythonStream, .updateStream),
            (NumpyFixtures.f4v1, .npy), (NumpyFixtures.f8fortran, .npy), (NumpyFixtures.v2, .npy),
            (NumpyFixtures.npz, .npz), (NumpyFixtures.npzc, .npz),
            (safetensorsBytes(header: #"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F4","shape":[4],"data_offsets":[8,10]}}"#,
                              data: [UInt8](repeating: 1, count: 10)), .safetensors),
            (Array(#"{"a": [1, 2.5, "x"], "b": null}"#.utf8), .json),
        ]
        for seed in seeds {
            let outcome = seed.bytes.withUnsafeBytes { FuzzTargets.run($0) }
            XCTAssertTrue(outcome.accepted(by: seed.parser), "the unmutated \(seed.parser) seed was rejected")
        }
        var accepted = [Int](repeating: 0, count: FuzzTargets.Parser.allCases.count)
        var rejected = accepted
        var state: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(1, bound)))
        }
        let interesting: [UInt64] = [0, 1, 7, 8, 0xFF, 0xFFFF, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, UInt64.max, 100_000_001]
        for iteration in 0..<10_000 {
            let seed = seeds[iteration % seeds.count]
            var bytes = seed.bytes
            for _ in 0..<(1 + next(4)) {
                switch next(5) {
                case 0 where !bytes.isEmpty:
                    bytes[next(bytes.count)] ^= UInt8(1 << next(8))
                case 1 where !bytes.isEmpty:
                    bytes.removeLast(next(bytes.count))
                case 2:
                    bytes.insert(UInt8(next(256)), at: next(bytes.count + 1))
                case 3 where bytes.count >= 8:
                    let offset = next(bytes.count - 7)
                    let value = interesting[next(interesting.count)]
                    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
                default:
                    if !bytes.isEmpty { bytes[next(bytes.count)] = UInt8(next(256)) }
                }
            }
            let outcome = bytes.withUnsafeBytes { FuzzTargets.run($0) }
            if outcome.accepted(by: seed.parser) { accepted[seed.parser.rawValue] += 1 } else { rejected[seed.parser.rawValue] += 1 }
        }
        // Every parser saw mutants of its own seed that it accepted and ones it rejected:
        // a fuzz entry point that parsed nothing would fail here.
        for parser in FuzzTargets.Parser.allCases where parser != .updateStreamSummary {
            XCTAssertGreaterThan(accepted[parser.rawValue], 0, "\(parser): no mutant accepted")
            XCTAssertGreaterThan(rejected[parser.rawValue], 0, "\(parser): no mutant rejected")
        }
    }
}
