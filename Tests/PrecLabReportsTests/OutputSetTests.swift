import Foundation
import PrecLabSupport
import XCTest
@testable import PrecLabReports

/// A run's outputs are written as a set: every path checked against every other
/// first, and all files or none written.
final class OutputSetTests: XCTestCase {
    private var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "preclab-outputset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    private func listing(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func testTwoSpellingsOfOneDestinationAreRefused() throws {
        let set = OutputSet(force: true, inputs: [])
        for (first, second) in [("a.json", "a.json"), ("a.json", "x/../a.json"), ("./a.json", "a.json"),
                                ("d/a.json", "d//a.json")] {
            XCTAssertThrowsError(try set.check(files: [root + "/" + first, root + "/" + second], directories: [root + "/d"])) {
                guard case PrecLabError.outputRefused(_, .writtenTwice) = $0 else { return XCTFail("\(first) \(second): \($0)") }
            }
        }
        XCTAssertNoThrow(try set.check(files: [root + "/a.json", root + "/b.json"]))
    }

    func testMissingFolderAndFileInTheWayAreRefusedBeforeWriting() throws {
        let set = OutputSet(force: false, inputs: [])
        XCTAssertThrowsError(try set.check(files: [root + "/nodir/b.csv"])) {
            guard case PrecLabError.outputRefused(_, .missingDirectory) = $0 else { return XCTFail("\($0)") }
        }
        // A directory the set creates may hold its files.
        XCTAssertNoThrow(try set.check(files: [root + "/new/p.svg"], directories: [root + "/new"]))
        FileManager.default.createFile(atPath: root + "/plain", contents: Data("x".utf8))
        XCTAssertThrowsError(try set.check(files: [], directories: [root + "/plain"])) {
            guard case PrecLabError.outputRefused(_, .notADirectory) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try set.check(files: [], directories: [root + "/plain/sub"])) {
            guard case PrecLabError.outputRefused(_, .notADirectory) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(listing(root), ["plain"])
    }

    /// The second file cannot be staged (its folder vanishes while the first file's
    /// text is produced): the first file's staged copy and the directory the set
    /// created are removed, and nothing appears.
    func testAFailureWhileStagingLeavesNothingBehind() throws {
        let doomed = root + "/doomed"
        try FileManager.default.createDirectory(atPath: doomed, withIntermediateDirectories: true)
        struct RemovesFolder: ReportFile {
            let folder: String
            func fileText() -> String {
                try? FileManager.default.removeItem(atPath: folder)
                return "first\n"
            }
        }
        let set = OutputSet(force: false, inputs: [])
        XCTAssertThrowsError(try set.write([
            OutputSet.File(path: root + "/made/first.json", content: RemovesFolder(folder: doomed)),
            OutputSet.File(path: doomed + "/second.csv", content: "second\n"),
        ], directories: [root + "/made"]))
        XCTAssertEqual(listing(root), [])
    }

    func testWritesEveryFile() throws {
        let set = OutputSet(force: false, inputs: [])
        try set.write([OutputSet.File(path: root + "/p/a.svg", content: "a"),
                       OutputSet.File(path: root + "/b.json", content: "b")], directories: [root + "/p"])
        XCTAssertEqual(listing(root), ["b.json", "p"])
        XCTAssertEqual(listing(root + "/p"), ["a.svg"])
        // Existing files are replaced only with force; an input never.
        XCTAssertThrowsError(try set.write([OutputSet.File(path: root + "/b.json", content: "c")]))
        let input = root + "/b.json"
        XCTAssertThrowsError(try OutputSet(force: true, inputs: [input]).write([OutputSet.File(path: input, content: "c")])) {
            guard case PrecLabError.outputRefused(_, .isInput) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(try String(contentsOfFile: input, encoding: .utf8), "b")
    }
}
