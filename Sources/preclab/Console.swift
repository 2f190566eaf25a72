#if canImport(Glibc)
import Glibc
#endif

/// Writing to the terminal: results to stdout, diagnostics and progress to stderr.
enum Console {
    static func out(_ text: String) {
        print(text)
    }

    static func error(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        writeStandardError(line)
    }

    /// Whether stderr is a terminal (progress lines redraw in place only there).
    static var stderrIsTerminal: Bool { isatty(2) != 0 }

    /// A progress line on stderr, redrawn in place (`ProgressReporter` calls it only
    /// when stderr is a terminal).
    static func progress(_ text: String) {
        writeStandardError("\r\u{1B}[K" + text)
    }

    /// Ends a redrawn progress line.
    static func endProgress() {
        writeStandardError("\r\u{1B}[K")
    }

    private static func writeStandardError(_ text: String) {
        var copy = text
        copy.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
