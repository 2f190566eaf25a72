// swift-tools-version:6.0
//
// preclab: a precision-simulation laboratory for low-precision training.
// No SwiftPM package dependencies by design; linear algebra comes from the
// system LAPACK/OpenBLAS through the CLapack system-library target.
import PackageDescription

/// `-enforce-exclusivity=unchecked` removes dynamic exclusivity checks from the hot
/// loops (they are unsafe-pointer based). SwiftPM refuses unsafe flags in a package
/// used as a dependency, so library targets get the flag only when the build asks for
/// it with PRECLAB_UNCHECKED_EXCLUSIVITY=1 (`make build` and `make bench` do; README,
/// "Using preclab from Swift"). The executables always get it.
let uncheckedExclusivity: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
let numericSettings: [SwiftSetting] =
    Context.environment["PRECLAB_UNCHECKED_EXCLUSIVITY"] == "1" ? uncheckedExclusivity : []
let executableSettings = uncheckedExclusivity

let package = Package(
    name: "preclab",
    products: [
        .executable(name: "preclab", targets: ["preclab"]),
        .library(name: "PrecLab", targets: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth",
            "PrecLabAnalysis", "PrecLabExperiments", "PrecLabTraining",
        ]),
    ],
    targets: [
        // Shared plumbing: errors with exit codes, atomic output files, JSON,
        // deterministic parallel chunking.
        .target(name: "PrecLabSupport", swiftSettings: numericSettings),
        // Low-precision formats and bit-exact rounding.
        .target(name: "PrecLabFormats", dependencies: ["PrecLabSupport"],
                swiftSettings: numericSettings),
        // File formats: safetensors, npy/npz, update streams v1. Raw bytes and dtypes
        // only; decoding floats goes through PrecLabFormats at a higher layer.
        .target(name: "PrecLabFiles", dependencies: ["PrecLabSupport", "CPrecLabKernels"],
                swiftSettings: numericSettings),
        // System LAPACKE + CBLAS (Debian: libopenblas-dev, liblapacke-dev).
        .systemLibrary(name: "CLapack", path: "Sources/CLapack"),
        // Spectral metrics in float64 on LAPACK.
        .target(name: "PrecLabSpectral", dependencies: ["PrecLabSupport", "CLapack"],
                swiftSettings: numericSettings),
        // The fused bf16 replay step and a prefetch hint, in C (see the headers for why).
        .target(name: "CPrecLabKernels"),
        // Replaying update streams under storage precisions and policies.
        .target(name: "PrecLabReplay",
                dependencies: ["PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "CPrecLabKernels"],
                swiftSettings: numericSettings),
        // Synthetic update streams: base weights with a realistic spectrum and
        // simulated AdamW steps (rl / sft / noise profiles) for experiments and the demo.
        .target(name: "PrecLabSynth",
                dependencies: ["PrecLabSupport", "PrecLabFiles", "PrecLabFormats", "CLapack"],
                swiftSettings: numericSettings),
        // Terminal tables, JSON, CSV and SVG plots.
        .target(name: "PrecLabReports", dependencies: ["PrecLabSupport"]),
        // The analyses behind the commands as library calls with typed options and
        // results: checkpoint comparison, consistency, replay-then-spectral, cast,
        // tensor selection; JSON, CSV, tables and plots are encodings of the results.
        .target(name: "PrecLabAnalysis", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "PrecLabSpectral", "PrecLabReplay",
            "PrecLabReports",
        ], swiftSettings: numericSettings),
        // Declarative experiments: grids of synthesised streams replayed and measured,
        // reported as CSV, SVG and markdown (`preclab sweep`).
        .target(name: "PrecLabExperiments", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "PrecLabSynth",
            "PrecLabReplay", "PrecLabSpectral", "PrecLabReports", "PrecLabAnalysis",
        ]),
        // Closed-loop training of a small MLP policy (pretrain, sft, rl) with the storage
        // policy inside the loop, recording update streams (`preclab train`).
        .target(name: "PrecLabTraining", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "PrecLabReplay", "PrecLabReports", "PrecLabAnalysis",
            "CLapack",
        ], swiftSettings: numericSettings),
        .executableTarget(name: "preclab", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth", "PrecLabExperiments",
            "PrecLabAnalysis", "PrecLabTraining",
        ], swiftSettings: executableSettings),
        // Benchmarks (`make bench`): ratios against memcpy / numpy measured in one run.
        .executableTarget(name: "preclab-bench", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth", "PrecLabTraining",
        ], swiftSettings: executableSettings),
        // Shared by the test targets: the private Python environment for cross-checks.
        .target(name: "PrecLabTestSupport", dependencies: ["PrecLabSupport"], path: "Tests/PrecLabTestSupport"),
        .testTarget(name: "PrecLabSupportTests", dependencies: ["PrecLabSupport"]),
        .testTarget(name: "PrecLabFormatsTests", dependencies: ["PrecLabFormats", "PrecLabTestSupport"]),
        .testTarget(name: "PrecLabFilesTests", dependencies: ["PrecLabFiles", "PrecLabFormats"]),
        .testTarget(name: "PrecLabSpectralTests", dependencies: ["PrecLabSpectral", "PrecLabTestSupport"]),
        .testTarget(name: "PrecLabReplayTests",
                    dependencies: ["PrecLabReplay", "PrecLabFiles", "PrecLabFormats", "PrecLabSupport"]),
        .testTarget(name: "PrecLabReportsTests", dependencies: ["PrecLabReports"]),
        .testTarget(name: "PrecLabSynthTests",
                    dependencies: ["PrecLabSynth", "PrecLabFiles", "PrecLabSpectral"]),
        // Checkpoint fixtures with hand-chosen values, shared by the analysis and CLI tests.
        .target(name: "PrecLabTestFixtures", dependencies: ["PrecLabFiles", "PrecLabFormats", "PrecLabSupport"],
                path: "Tests/PrecLabTestFixtures"),
        .testTarget(name: "PrecLabAnalysisTests",
                    dependencies: ["PrecLabAnalysis", "PrecLabTestFixtures", "PrecLabFiles", "PrecLabFormats",
                                   "PrecLabReplay", "PrecLabSpectral", "PrecLabSupport"]),
        .testTarget(name: "PrecLabExperimentsTests",
                    dependencies: ["PrecLabExperiments", "PrecLabSupport", "PrecLabFormats"]),
        .testTarget(name: "PreclabCLITests", dependencies: ["preclab", "PrecLabTestFixtures", "PrecLabFiles",
                                                            "PrecLabFormats", "PrecLabSupport", "PrecLabTestSupport"]),
        .testTarget(name: "PrecLabTrainingTests",
                    dependencies: ["PrecLabTraining", "PrecLabReplay", "PrecLabFormats", "PrecLabFiles", "PrecLabSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
