// swift-tools-version:6.2
import PackageDescription

// Benchmarks live in their own package so `swift test` never builds them. `synwatch` is a link to the
// repository root, so the dependency has the same name whatever the checkout's folder is called.
let package = Package(
    name: "synwatch-benchmarks",
    dependencies: [.package(path: "synwatch")],
    targets: [
        .systemLibrary(name: "CBenchmarkPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .executableTarget(
            name: "synwatch-benchmark",
            dependencies: [
                "CBenchmarkPcap",
                .product(name: "SynwatchEngine", package: "synwatch"),
                .product(name: "SynwatchCapture", package: "synwatch"),
                .product(name: "SynwatchTrafficGen", package: "synwatch"),
            ],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)
