// swift-tools-version:6.0
// A Swift package using preclab as a library (README, "Using preclab from Swift").
// Outside this repository, depend on your checkout instead: .package(path: "/path/to/preclab").
import PackageDescription

let package = Package(
    name: "preclab-example",
    dependencies: [.package(name: "preclab", path: "../..")],
    targets: [
        .executableTarget(name: "preclab-example", dependencies: [.product(name: "PrecLab", package: "preclab")]),
    ]
)
