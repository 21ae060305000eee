// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]
// The modules every packet goes through (decoding, reading, the engine) and the traffic generator the tests write
// their captures with are optimized in debug builds too, assertions kept: unoptimized, they took most of the tests'
// CPU time, and so the tests run that code as it ships.
let perPacket: [SwiftSetting] =
    strict + [.unsafeFlags(["-O", "-assert-config", "Debug"], .when(configuration: .debug))]

let package = Package(
    name: "synwatch",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "synwatch", targets: ["synwatch"]),
        .executable(name: "synwatchd", targets: ["synwatchd"]),
        .executable(name: "synwatch-trafficgen", targets: ["synwatch-trafficgen"]),
        .library(name: "SynwatchEngine", targets: ["SynwatchEngine"]),
        .library(name: "SynwatchCapture", targets: ["SynwatchCapture"]),
        .library(name: "SynwatchTrafficGen", targets: ["SynwatchTrafficGen"]),
        // For Fuzz/: the configuration loader and the JSON contract, as the CLI and the daemon use them.
        .library(name: "SynwatchConfig", targets: ["SynwatchConfig"]),
        .library(name: "SynwatchProtocol", targets: ["SynwatchProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C: libpcap, reached through a one-header system-library module.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // C: libsystemd (sd_notify, socket activation, journal sending), the same way.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // C: libyaml's parser for the configuration file (what Yams wraps, without Yams' Foundation and ICU).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        // The one syscall layer: swift-system's descriptors and errno, one error type naming the failing call.
        .target(
            name: "SynwatchSystem",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // C: the compiler's cache prefetch, which Swift lacks, as one inline function.
        .target(name: "CPrefetch"),
        // The pure detection engine: bytes and capture timestamps in, events out. No I/O, no clock.
        .target(name: "SynwatchEngine", dependencies: ["CPrefetch"], swiftSettings: perPacket),
        // Reading frames from capture files (and, later, live interfaces) into the engine.
        .target(
            name: "SynwatchCapture",
            dependencies: [
                "CPcap", "SynwatchEngine", "SynwatchSystem", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: perPacket
        ),
        // The YAML configuration file.
        .target(
            name: "SynwatchConfig",
            dependencies: [
                "CYAML", "SynwatchEngine", "SynwatchHooks", "SynwatchSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The daemon as a library: its services (capture loops, kernel readings, systemd, reloads), its state
        // and the query socket that serves it.
        .target(
            name: "SynwatchDaemon",
            dependencies: [
                "SynwatchCapture", "SynwatchConfig", "SynwatchEngine", "SynwatchHooks", "SynwatchKernel",
                "SynwatchProtocol", "SynwatchSystem", "SynwatchSystemd",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The query socket's client: what the CLI (and tests) ask the daemon with.
        .target(
            name: "SynwatchClient",
            dependencies: [
                "SynwatchProtocol", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // What the daemon and the CLI say to the outside: events and summaries as JSON.
        .target(name: "SynwatchProtocol", dependencies: ["SynwatchEngine", "SynwatchKernel"], swiftSettings: strict),
        // The daemon's systemd edge: readiness and watchdog, socket activation, journald entries and logging.
        .target(
            name: "SynwatchSystemd",
            dependencies: [
                "CSystemd", "SynwatchEngine", "SynwatchProtocol", "SynwatchSystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The kernel's own view of TCP: /proc/net/netstat and /proc/net/snmp counters, SYN_RECV per listener.
        .target(
            name: "SynwatchKernel",
            dependencies: ["SynwatchSystem", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // Response hooks: an operator's command run on attack events, with the event on stdin.
        .target(
            name: "SynwatchHooks",
            dependencies: [
                "SynwatchEngine", "SynwatchProtocol", "SynwatchSystem", .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // Realistic synthetic traffic written as pcap/pcapng, for tests, benchmarks and tcpreplay.
        .target(name: "SynwatchTrafficGen", swiftSettings: perPacket),

        .executableTarget(
            name: "synwatch",
            dependencies: [
                "SynwatchEngine", "SynwatchCapture", "SynwatchConfig", "SynwatchClient", "SynwatchProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The daemon's command line: its options and help (the man page's source), then the library's run.
        .executableTarget(
            name: "synwatchd",
            dependencies: [
                "SynwatchConfig", "SynwatchDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "synwatch-trafficgen",
            dependencies: ["SynwatchTrafficGen", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),

        // What the tests of several modules share: a real journald, network namespaces, a known daemon snapshot.
        .target(
            name: "SynwatchTestSupport",
            dependencies: ["SynwatchClient", "SynwatchDaemon", "SynwatchEngine"],
            swiftSettings: strict
        ),

        .testTarget(
            name: "SynwatchEngineTests",
            dependencies: ["SynwatchEngine", "SynwatchTrafficGen"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchSystemTests",
            dependencies: ["SynwatchSystem", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchCaptureTests",
            // File fixtures are built with libpcap itself; live tests replay the traffic generator's captures.
            dependencies: ["SynwatchCapture", "SynwatchEngine", "CPcap", "SynwatchTrafficGen", "SynwatchTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchConfigTests",
            dependencies: ["SynwatchConfig", "SynwatchHooks"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchProtocolTests",
            dependencies: ["SynwatchProtocol"],
            // The golden files are read by path, so the wire format stays plain text in the tree.
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        // The query server, and the daemon's services in-process: on a veth of the test's own, with a notify
        // socket of the test's own.
        .testTarget(
            name: "SynwatchDaemonTests",
            dependencies: [
                "SynwatchClient", "SynwatchConfig", "SynwatchDaemon", "SynwatchEngine", "SynwatchProtocol",
                "SynwatchSystemd", "SynwatchTestSupport", "SynwatchTrafficGen",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Against a real notify socket of the test's own and a real systemd-journald.
        .testTarget(
            name: "SynwatchSystemdTests",
            dependencies: [
                "SynwatchSystemd", "SynwatchEngine", "SynwatchProtocol", "SynwatchSystem", "SynwatchTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchKernelTests",
            dependencies: ["SynwatchKernel", "SynwatchSystem", "SynwatchTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchHooksTests",
            dependencies: [
                "SynwatchHooks", "SynwatchEngine", "SynwatchProtocol", "SynwatchSystem", "SynwatchTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchTrafficGenTests",
            dependencies: ["SynwatchTrafficGen", "SynwatchTestSupport"],
            swiftSettings: strict
        ),
        // Runs the built `synwatch` on generated and real captures, as an operator would.
        .testTarget(
            name: "SynwatchEndToEndTests",
            dependencies: [
                "SynwatchTrafficGen", "synwatch", "synwatchd", "synwatch-trafficgen", "SynwatchDaemon",
                "SynwatchCapture", "SynwatchEngine", "SynwatchTestSupport",
            ],
            swiftSettings: strict
        ),
    ]
)
