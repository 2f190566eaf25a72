// swift-tools-version:6.0
//
// preclab: a precision-simulation laboratory for low-precision training.
// No SwiftPM package dependencies by design; linear algebra comes from the
// system LAPACK/OpenBLAS through the CLapack system-library target.
import PackageDescription

/// Optimisation flags shared by the numeric modules. `-enforce-exclusivity=unchecked`
/// removes dynamic exclusivity checks from the hot loops (they are unsafe-pointer based).
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "preclab",
    products: [
        .executable(name: "preclab", targets: ["preclab"]),
        .library(name: "PrecLab", targets: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth", "PrecLabTraining",
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
        .target(name: "PrecLabFiles", dependencies: ["PrecLabSupport"],
                swiftSettings: numericSettings),
        // System LAPACKE + CBLAS (Debian: libopenblas-dev, liblapacke-dev).
        .systemLibrary(name: "CLapack", path: "Sources/CLapack"),
        // Spectral metrics in float64 on LAPACK.
        .target(name: "PrecLabSpectral", dependencies: ["PrecLabSupport", "CLapack"],
                swiftSettings: numericSettings),
        // Replaying update streams under storage precisions and policies.
        .target(name: "PrecLabReplay",
                dependencies: ["PrecLabSupport", "PrecLabFormats", "PrecLabFiles"],
                swiftSettings: numericSettings),
        // Synthetic update streams: base weights with a realistic spectrum and
        // simulated AdamW steps (rl / sft / noise profiles) for experiments and the demo.
        .target(name: "PrecLabSynth",
                dependencies: ["PrecLabSupport", "PrecLabFiles", "PrecLabFormats", "CLapack"],
                swiftSettings: numericSettings),
        // Terminal tables, JSON, CSV and SVG plots.
        .target(name: "PrecLabReports", dependencies: ["PrecLabSupport"]),
        // Declarative experiments: grids of synthesised streams replayed and measured,
        // reported as CSV, SVG and markdown (`preclab sweep`).
        .target(name: "PrecLabExperiments", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "PrecLabSynth",
            "PrecLabReplay", "PrecLabSpectral", "PrecLabReports",
        ]),
        // Closed-loop training of a small MLP policy (pretrain, sft, rl) with the storage
        // policy inside the loop, recording update streams (`preclab train`).
        .target(name: "PrecLabTraining", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles", "PrecLabReplay", "PrecLabReports", "CLapack",
        ], swiftSettings: numericSettings),
        .executableTarget(name: "preclab", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth", "PrecLabExperiments",
            "PrecLabTraining",
        ], swiftSettings: numericSettings),
        // Benchmarks (`make bench`): ratios against memcpy / numpy measured in one run.
        .executableTarget(name: "preclab-bench", dependencies: [
            "PrecLabSupport", "PrecLabFormats", "PrecLabFiles",
            "PrecLabSpectral", "PrecLabReplay", "PrecLabReports", "PrecLabSynth", "PrecLabTraining",
        ], swiftSettings: numericSettings),
        .testTarget(name: "PrecLabSupportTests", dependencies: ["PrecLabSupport"]),
        .testTarget(name: "PrecLabFormatsTests", dependencies: ["PrecLabFormats"]),
        .testTarget(name: "PrecLabFilesTests", dependencies: ["PrecLabFiles", "PrecLabFormats"]),
        .testTarget(name: "PrecLabSpectralTests", dependencies: ["PrecLabSpectral"]),
        .testTarget(name: "PrecLabReplayTests",
                    dependencies: ["PrecLabReplay", "PrecLabFiles", "PrecLabFormats", "PrecLabSupport"]),
        .testTarget(name: "PrecLabReportsTests", dependencies: ["PrecLabReports"]),
        .testTarget(name: "PrecLabSynthTests",
                    dependencies: ["PrecLabSynth", "PrecLabFiles", "PrecLabSpectral"]),
        .testTarget(name: "PrecLabTrainingTests",
                    dependencies: ["PrecLabTraining", "PrecLabReplay", "PrecLabFormats", "PrecLabFiles", "PrecLabSupport"]),
        .testTarget(name: "PreclabCLITests", dependencies: ["preclab", "PrecLabFiles", "PrecLabFormats", "PrecLabSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
