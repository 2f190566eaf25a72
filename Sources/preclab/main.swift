#if canImport(Glibc)
import Glibc
#endif

// The preclab command line: a thin layer over the library modules.
exit(CommandLineTool.run(Array(CommandLine.arguments.dropFirst())))
