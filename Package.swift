// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // C: libpcap, reached through a one-header system-library module.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // C: libsystemd (sd_notify, socket activation, journal sending), the same way.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // The pure detection engine: bytes and capture timestamps in, events out. No I/O, no clock.
        .target(name: "SynwatchEngine", swiftSettings: strict),
        // Reading frames from capture files (and, later, live interfaces) into the engine.
        .target(name: "SynwatchCapture", dependencies: ["CPcap", "SynwatchEngine"], swiftSettings: strict),
        // The YAML configuration file.
        .target(
            name: "SynwatchConfig",
            dependencies: ["SynwatchEngine", "SynwatchHooks", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // The daemon's state shared by its capture loop and its query socket.
        .target(
            name: "SynwatchDaemon",
            dependencies: [
                "SynwatchEngine", "SynwatchHooks", "SynwatchKernel", "SynwatchProtocol",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
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
                "CSystemd", "SynwatchEngine", "SynwatchProtocol", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The kernel's own view of TCP: /proc/net/netstat and /proc/net/snmp counters, SYN_RECV per listener.
        .target(name: "SynwatchKernel", swiftSettings: strict),
        // Response hooks: an operator's command run on attack events, with the event on stdin.
        .target(
            name: "SynwatchHooks",
            dependencies: ["SynwatchEngine", "SynwatchProtocol", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Realistic synthetic traffic written as pcap/pcapng, for tests, benchmarks and tcpreplay.
        .target(name: "SynwatchTrafficGen", swiftSettings: strict),

        .executableTarget(
            name: "synwatch",
            dependencies: [
                "SynwatchEngine", "SynwatchCapture", "SynwatchConfig", "SynwatchClient", "SynwatchProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The daemon: live capture into the engine, alerts to journald, state to the query socket.
        .executableTarget(
            name: "synwatchd",
            dependencies: [
                "SynwatchDaemon", "SynwatchCapture", "SynwatchConfig", "SynwatchSystemd", "SynwatchEngine",
                "SynwatchProtocol", "SynwatchKernel", "SynwatchHooks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
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
        .testTarget(
            name: "SynwatchDaemonTests",
            dependencies: [
                "SynwatchClient", "SynwatchDaemon", "SynwatchEngine", "SynwatchProtocol", "SynwatchTestSupport",
            ],
            swiftSettings: strict
        ),
        // Against a real notify socket of the test's own and a real systemd-journald.
        .testTarget(
            name: "SynwatchSystemdTests",
            dependencies: [
                "SynwatchSystemd", "SynwatchEngine", "SynwatchProtocol", "SynwatchTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchKernelTests",
            dependencies: ["SynwatchKernel", "SynwatchTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SynwatchHooksTests",
            dependencies: [
                "SynwatchHooks", "SynwatchEngine", "SynwatchProtocol", "SynwatchTestSupport",
                .product(name: "Logging", package: "swift-log"),
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
                "SynwatchEngine",
                "SynwatchTestSupport",
            ],
            swiftSettings: strict
        ),
    ]
)
