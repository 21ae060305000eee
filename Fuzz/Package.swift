// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets live in their own package so `swift build --build-tests` never builds them; `scripts/fuzz`
// builds them with `-sanitize=fuzzer,address -parse-as-library` (libFuzzer supplies `main`). `synwatch` is a link
// to the repository root, as in Benchmarks/.
let package = Package(
    name: "synwatch-fuzz",
    dependencies: [.package(path: "synwatch")],
    targets: [
        // The packet decoder on one frame; the first byte picks the link type.
        .executableTarget(
            name: "fuzz-decoder",
            dependencies: [.product(name: "SynwatchEngine", package: "synwatch")],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
        // A capture file through the mapped pcap and pcapng readers (or libpcap), the engine and the JSON output.
        .executableTarget(
            name: "fuzz-capture",
            dependencies: [
                .product(name: "SynwatchEngine", package: "synwatch"),
                .product(name: "SynwatchCapture", package: "synwatch"),
                .product(name: "SynwatchProtocol", package: "synwatch"),
            ],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
        // The configuration loader on one YAML text.
        .executableTarget(
            name: "fuzz-config",
            dependencies: [.product(name: "SynwatchConfig", package: "synwatch")],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)
