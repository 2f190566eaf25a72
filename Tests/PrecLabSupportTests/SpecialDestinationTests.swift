import XCTest
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import PrecLabSupport

/// Issue 11, item 1: a device node, a FIFO or a link to one of our descriptors given as
/// an output is written through, never replaced, with or without --force.
final class SpecialDestinationTests: XCTestCase {
    var directory: String = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "preclab-special-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func entries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory).sorted()) ?? []
    }

    private func mode(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    /// Reads a non-blocking descriptor on a thread until end of file or the deadline
    /// (never a run-loop wait).
    final class BoundedReader: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var done = false
        let descriptor: Int32

        init(descriptor: Int32, seconds: Double) {
            self.descriptor = descriptor
            let deadline = Date().addingTimeInterval(seconds)
            let thread = Thread { [self] in
                var sawData = false
                var chunk = [UInt8](repeating: 0, count: 65536)
                while Date() < deadline {
                    var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    let ready = poll(&poller, 1, 50)
                    if ready <= 0 { continue }
                    let count = read(descriptor, &chunk, chunk.count)
                    if count > 0 {
                        sawData = true
                        lock.lock(); bytes += chunk[0..<count]; lock.unlock()
                    } else if count == 0, sawData || poller.revents & Int16(POLLHUP) != 0 {
                        break  // the writer closed its end
                    }
                }
                lock.lock(); done = true; lock.unlock()
            }
            thread.start()
        }

        /// Waits (polling, bounded) for the reader thread to finish; returns what it read.
        func finish(timeout: Double = 20) -> [UInt8]? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                lock.lock()
                let finished = done
                let result = bytes
                lock.unlock()
                if finished { return result }
                usleep(2000)
            }
            return nil
        }
    }

    func testFifoIsWrittenThroughWithAndWithoutForce() throws {
        let fifo = directory + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0, String(cString: strerror(errno)))
        XCTAssertEqual(try AtomicFileWriter.destination(of: fifo), .specialFile)
        for force in [false, true] {
            // Open the read end first (non-blocking), so the writer's open never waits.
            let readEnd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            XCTAssertGreaterThanOrEqual(readEnd, 0)
            defer { close(readEnd) }
            let reader = BoundedReader(descriptor: readEnd, seconds: 10)
            let payload = Array("force \(force)\n".utf8) + [UInt8](repeating: 7, count: 3 << 20)
            let writer = try AtomicFileWriter(path: fifo, force: force)
            XCTAssertTrue(writer.writesThrough)
            try writer.write(payload)
            try writer.commit()
            let received = try XCTUnwrap(reader.finish(), "the FIFO reader did not finish")
            XCTAssertEqual(received.count, payload.count)
            XCTAssertEqual(received, payload)
            XCTAssertEqual(mode(fifo), S_IFIFO, "the FIFO was replaced")
            XCTAssertEqual(entries(), ["pipe"], "a temporary file was left next to the FIFO")
        }
    }

    /// glibc's `makedev` (a macro Swift cannot import).
    private func deviceNumber(major: UInt64, minor: UInt64) -> dev_t {
        dev_t(((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF))
    }

    func testDeviceNodeIsWrittenThroughNeverReplaced() throws {
        guard geteuid() == 0 else { throw XCTSkip("mknod needs root") }
        let device = directory + "/null"
        // Character device 1,3 is /dev/null.
        guard mknod(device, S_IFCHR | 0o666, deviceNumber(major: 1, minor: 3)) == 0 else {
            throw XCTSkip("mknod refused here: \(String(cString: strerror(errno)))")
        }
        for force in [false, true] {
            try AtomicFileWriter.write(text: "{\"force\": \(force)}\n", to: device, force: force)
            var status = stat()
            XCTAssertEqual(lstat(device, &status), 0)
            XCTAssertEqual(status.st_mode & S_IFMT, S_IFCHR, "the device node was replaced (force \(force))")
            XCTAssertEqual(status.st_rdev, deviceNumber(major: 1, minor: 3))
            XCTAssertEqual(status.st_size, 0)
            XCTAssertEqual(entries(), ["null"])
        }
    }

    func testLinkToOurDescriptorIsWrittenThroughThatDescriptor() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]) }
        let link = directory + "/out.json"
        XCTAssertEqual(symlink("/proc/self/fd/\(ends[1])", link), 0)
        let linkToLink = directory + "/again"
        XCTAssertEqual(symlink("out.json", linkToLink), 0)
        XCTAssertEqual(try AtomicFileWriter.destination(of: link), .descriptor(ends[1]))
        XCTAssertEqual(try AtomicFileWriter.destination(of: linkToLink), .descriptor(ends[1]))
        XCTAssertEqual(try AtomicFileWriter.destination(of: "/dev/stdout"), .descriptor(1))
        XCTAssertEqual(try AtomicFileWriter.destination(of: "-"), .descriptor(1))
        XCTAssertEqual(try AtomicFileWriter.destination(of: "/dev/fd/2"), .descriptor(2))
        XCTAssertEqual(try AtomicFileWriter.destination(of: "/proc/self/fd/12x"), .absent)

        try AtomicFileWriter.write(text: "one\n", to: link, force: true)
        try AtomicFileWriter.write(text: "two\n", to: linkToLink)
        close(ends[1])
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(ends[0], &buffer, buffer.count)
        XCTAssertEqual(String(decoding: buffer[0..<max(0, count)], as: UTF8.self), "one\ntwo\n")
        XCTAssertEqual(mode(link), S_IFLNK, "the link was replaced")
        XCTAssertEqual(mode(linkToLink), S_IFLNK, "the link was replaced")
        XCTAssertEqual(entries(), ["again", "out.json"])
    }

    func testForceStillReplacesOnlyRegularFilesAndRefusesOtherKinds() throws {
        let regular = directory + "/r.txt"
        try AtomicFileWriter.write(text: "old", to: regular)
        XCTAssertThrowsError(try AtomicFileWriter.write(text: "new", to: regular)) {
            XCTAssertEqual($0 as? PrecLabError, .outputRefused(path: regular, reason: .exists))
        }
        try AtomicFileWriter.write(text: "new", to: regular, force: true)
        XCTAssertEqual(try String(contentsOfFile: regular, encoding: .utf8), "new")
        let blockDevices = ["/dev/loop0", "/dev/sda", "/dev/vda"].filter { mode($0) == S_IFBLK }
        for path in [directory] + blockDevices {
            XCTAssertThrowsError(try AtomicFileWriter.checkDestination(path, force: true, inputs: []), path) {
                let expected: PrecLabError.OutputRefusal = path == directory ? .isDirectory : .unsupportedKind
                XCTAssertEqual($0 as? PrecLabError, .outputRefused(path: path, reason: expected))
            }
        }
    }

    func testInputReachedThroughAFifoNameIsRefused() throws {
        let fifo = directory + "/in-and-out"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try AtomicFileWriter.checkDestination(fifo, force: true, inputs: [fifo])) {
            XCTAssertEqual($0 as? PrecLabError, .outputRefused(path: fifo, reason: .isInput))
        }
    }

    func testTemporaryFilesAreRegisteredUntilCommitOrAbort() throws {
        let path = directory + "/tracked.bin"
        let writer = try AtomicFileWriter(path: path)
        XCTAssertTrue(InFlightFiles.registeredPaths.contains(writer.temporaryPath))
        try writer.write([1, 2, 3])
        try writer.commit()
        XCTAssertFalse(InFlightFiles.registeredPaths.contains(writer.temporaryPath))

        let dropped = try AtomicFileWriter(path: directory + "/dropped.bin")
        let temporary = dropped.temporaryPath
        dropped.abort()
        XCTAssertFalse(InFlightFiles.registeredPaths.contains(temporary))
    }

    func testRemoveAllDeletesRegisteredFilesThenDirectories() throws {
        let scratch = directory + "/scratch"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        let inside = scratch + "/stream.tmp-abc"
        _ = FileManager.default.createFile(atPath: inside, contents: Data([1]))
        let keep = directory + "/keep.txt"
        _ = FileManager.default.createFile(atPath: keep, contents: Data([2]))
        let directoryToken = InFlightFiles.register(directory: scratch)
        let fileToken = InFlightFiles.register(file: inside)
        XCTAssertNotNil(directoryToken)
        XCTAssertNotNil(fileToken)
        InFlightFiles.removeAll()
        InFlightFiles.unregister(fileToken)
        InFlightFiles.unregister(directoryToken)
        XCTAssertEqual(entries(), ["keep.txt"])
        XCTAssertNil(InFlightFiles.register(file: String(repeating: "x", count: InFlightFiles.pathCapacity)))
    }
}
