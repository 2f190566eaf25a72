import XCTest
import Foundation
@testable import PrecLabSupport

final class AtomicFileWriterTests: XCTestCase {
    var directory: String = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "preclab-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func entries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory).sorted()) ?? []
    }

    func testCommitPublishesAndAbortLeavesNothing() throws {
        let path = directory + "/out.txt"
        let writer = try AtomicFileWriter(path: path)
        try writer.write("hello")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "visible before commit")
        try writer.commit()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "hello")

        let second = try AtomicFileWriter(path: directory + "/other.txt")
        try second.write("partial")
        second.abort()
        XCTAssertEqual(entries(), ["out.txt"])
    }

    func testDroppedWriterRemovesTemporaryFile() throws {
        do {
            let writer = try AtomicFileWriter(path: directory + "/dropped.bin")
            try writer.write([1, 2, 3])
        }
        XCTAssertEqual(entries(), [])
    }

    func testExistingOutputNeedsForceAndInputsAreNeverOverwritten() throws {
        let path = directory + "/existing.txt"
        try AtomicFileWriter.write(text: "one", to: path)
        XCTAssertThrowsError(try AtomicFileWriter.write(text: "two", to: path)) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, false)
        }
        try AtomicFileWriter.write(text: "two", to: path, force: true)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two")
        XCTAssertThrowsError(try AtomicFileWriter.write(text: "three", to: path, force: true, inputs: [path]))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two")
    }

    func testLargeWritesBypassTheBufferInOrder() throws {
        let path = directory + "/large.bin"
        let writer = try AtomicFileWriter(path: path)
        let small: [UInt8] = [9, 8, 7]
        let large = [UInt8](repeating: 5, count: 3 << 20)
        try writer.write(small)
        try writer.write(large)
        try writer.write(small)
        try writer.commit()
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(data, small + large + small)
    }
}
